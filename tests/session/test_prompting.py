"""What a response is asked to be and what its LLM is sent, through a realtime session's events."""

from __future__ import annotations

import base64
from typing import Any

from tests.session.test_realtime import make, say, types


def audio_bytes(events: list[dict[str, Any]]) -> int:
    return sum(len(base64.b64decode(e["delta"])) for e in events if e["type"] == "response.output_audio.delta")


def test_out_of_band_input_takes_item_references_and_inline_items_in_order() -> None:
    session, driver = make()
    say(driver, "I want to buy a car.")
    first = session.conversation.last_id
    say(driver, "Something else entirely.")
    inline = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Classify it."}]}
    events = driver.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "output_modalities": ["text"],
                "input": [{"type": "item_reference", "id": first}, inline],
            },
        }
    )
    assert events[-2]["type"] == "response.done"
    assert events[-2]["response"]["status"] == "completed"
    assert driver.chat.requests[-1].messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "I want to buy a car."},
        {"role": "user", "content": "Classify it."},
    ]
    assert len(session.conversation) == 2  # the inline item stays out of the conversation


def test_a_reference_to_a_missing_item_is_an_error_and_no_response_starts() -> None:
    _, driver = make()
    say(driver)
    events = driver.send(
        {
            "type": "response.create",
            "event_id": "r1",
            "response": {"input": [{"type": "item_reference", "id": "item_404"}]},
        }
    )
    assert events == [
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": "Item reference 'item_404' does not exist.",
                "param": "response.input[0].id",
                "event_id": "r1",
            },
        }
    ]
    assert types(driver.send({"type": "response.create"}))[0] == "response.created"  # none is active


def first_clause_audio(response: dict[str, Any] | None) -> tuple[str, int]:
    """The voice of a response's first clause and the bytes of its audio on the wire."""
    _, driver = make(hold_tts=True)
    say(driver)
    driver.send({"type": "response.create", **({"response": response} if response else {})})
    [synth] = driver.held_tts
    driver.run_tts(synth)
    return synth.voice, audio_bytes(driver.pump())


def test_a_response_may_speak_in_its_own_voice_and_format() -> None:
    _, driver = make(hold_tts=True)
    say(driver)
    override = {"audio": {"output": {"voice": "ash", "format": {"type": "audio/pcmu"}}}}
    events = driver.send({"type": "response.create", "response": override})
    assert events[0]["response"]["audio"] == {"output": {"format": {"type": "audio/pcmu"}, "voice": "ash"}}
    voice, g711 = first_clause_audio(override)
    plain_voice, pcm16 = first_clause_audio(None)
    assert (voice, plain_voice) == ("ash", "alloy")
    # G.711 is one byte a sample at 8 kHz, PCM16 two at 24 kHz: a sixth of the bytes, less the 8 kHz
    # resampler's delay (under 50 ms: its tail leaves with the end of the response).
    assert pcm16 > 0
    assert 0 <= pcm16 // 6 - g711 < 8_000 * 50 // 1000


def test_a_voice_alone_keeps_the_session_format() -> None:
    _, driver = make(hold_tts=True)
    say(driver)
    events = driver.send({"type": "response.create", "response": {"audio": {"output": {"voice": "verse"}}}})
    assert events[0]["response"]["audio"] == {
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "verse"}
    }
    assert [s.voice for s in driver.held_tts] == ["verse"]


def test_with_truncation_disabled_every_item_is_sent() -> None:
    _, driver = make(context_tokens=300)
    driver.send({"type": "session.update", "session": {"type": "realtime", "truncation": "disabled"}})
    for i in range(30):
        say(driver, f"message number {i} " + "padding " * 10)
    driver.send({"type": "response.create"})
    messages = driver.chat.requests[-1].messages
    assert len(messages) == 31
    assert messages[1] == {"role": "user", "content": "message number 0 " + "padding " * 10}
