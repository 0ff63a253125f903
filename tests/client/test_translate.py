"""The translation client's pieces that need no server: the update it sends, side-by-side captions."""

from __future__ import annotations

import io

from openrealtime.client.translate import SideBySideCaptions, translation_session_update


def test_session_update_has_only_what_a_translation_session_accepts() -> None:
    assert translation_session_update(language="es", noise_reduction="near_field") == {
        "type": "session.update",
        "session": {
            "audio": {
                "input": {
                    "transcription": {"model": "gpt-realtime-whisper"},
                    "noise_reduction": {"type": "near_field"},
                },
                "output": {"language": "es"},
            }
        },
    }
    update = translation_session_update(language="fr", transcription_model=None)
    assert update["session"]["audio"]["input"] == {"transcription": None, "noise_reduction": None}


def feed(captions: SideBySideCaptions, kind: str, delta: str) -> None:
    captions({"type": f"session.{kind}_transcript.delta", "delta": delta})


def test_rows_pair_each_translated_sentence_with_its_source() -> None:
    out = io.StringIO()
    captions = SideBySideCaptions(out, width=63)
    feed(captions, "input", "Please send me the report")
    feed(captions, "output", "Complacer enviarme el informe")
    feed(captions, "input", " before the end of the week. I would")
    feed(captions, "output", " antes del fin de la semana.")
    feed(captions, "input", " like a table.")
    captions.flush()
    assert captions.rows == [
        (
            "Please send me the report before the end of the week.",
            "Complacer enviarme el informe antes del fin de la semana.",
        ),
        ("I would like a table.", ""),
    ]
    assert out.getvalue().splitlines() == [
        "Please send me the report      │ Complacer enviarme el informe",
        "before the end of the week.    │ antes del fin de la semana.",
        "I would like a table.          │",
    ]
