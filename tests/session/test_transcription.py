"""The transcription session, driven with scripted inputs; whole events are compared."""

from __future__ import annotations

import base64
import itertools

import numpy as np
import pytest

from openrealtime.engines.fake import EnergyVad, FakeTranscriber
from openrealtime.session.commands import TranscriptReady
from openrealtime.session.ids import Ids
from openrealtime.session.transcription import SessionInfo, TranscriptionSession
from openrealtime.session.turns import PARTIAL_STEP_MS
from tests.conftest import quiet, tone
from tests.session.driver import Driver, error_event

KNOWN_MODELS = {"gpt-4o-transcribe", "whisper-1", "gpt-realtime-whisper"}


def make(**kwargs: object) -> tuple[TranscriptionSession, Driver]:
    info = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: m in KNOWN_MODELS)
    session = TranscriptionSession(info, vad=EnergyVad(), ids=Ids(deterministic=True))
    return session, Driver(session, **kwargs)  # type: ignore[arg-type]


def configure(driver: Driver, turn_detection: object = "server_vad", **vad: object) -> list[dict]:
    td = None if turn_detection is None else {"type": turn_detection, **vad}
    return driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {
                    "input": {
                        "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                        "turn_detection": td,
                    }
                },
            },
        }
    )


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def test_session_created_is_first_and_complete() -> None:
    _, driver = make()
    created = driver.pump()
    assert created == [
        {
            "type": "session.created",
            "session": {
                "type": "transcription",
                "object": "realtime.transcription_session",
                "id": "sess_1",
                "expires_at": 4_600,
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "noise_reduction": None,
                        "transcription": None,
                        "turn_detection": {
                            "type": "server_vad",
                            "threshold": 0.5,
                            "prefix_padding_ms": 300,
                            "silence_duration_ms": 200,
                        },
                    }
                },
                "include": None,
            },
        }
    ]


def test_update_echoes_full_effective_session() -> None:
    _, driver = make()
    driver.pump()
    [updated] = configure(driver, "server_vad", silence_duration_ms=500)
    assert updated["type"] == "session.updated"
    audio_in = updated["session"]["audio"]["input"]
    assert audio_in["transcription"] == {
        "model": "gpt-4o-transcribe",
        "language": "en",
        "prompt": None,
    }
    assert audio_in["turn_detection"]["silence_duration_ms"] == 500
    assert audio_in["turn_detection"]["threshold"] == 0.5  # unchanged fields keep their values


@pytest.mark.parametrize(
    ("session_patch", "code", "param"),
    [
        (
            {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}},
            "integer_below_min_value",
            "session.audio.input.format.rate",
        ),
        (
            {"audio": {"input": {"transcription": {"model": "no-such-model"}}}},
            "invalid_value",
            "session.audio.input.transcription.model",
        ),
        ({"bogus": 1}, "unknown_parameter", "session.bogus"),
        (
            {"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}},
            None,
            "session.audio.input.turn_detection.threshold",
        ),
    ],
)
def test_bad_update_is_an_error_and_changes_nothing(session_patch: dict, code: str | None, param: str) -> None:
    session, driver = make()
    driver.pump()
    before = session.effective_session()
    [error] = driver.send(
        {"type": "session.update", "event_id": "upd_1", "session": {"type": "transcription", **session_patch}}
    )
    assert error["type"] == "error"
    assert error["error"]["param"] == param
    assert error["error"]["event_id"] == "upd_1"
    if code is not None:
        assert error["error"]["code"] == code
    assert session.effective_session() == before


def test_openai_model_names_map_to_the_engine() -> None:
    _, driver = make()
    driver.pump()
    for model in ("whisper-1", "gpt-realtime-whisper"):
        [updated] = driver.send(
            {
                "type": "session.update",
                "session": {"type": "transcription", "audio": {"input": {"transcription": {"model": model}}}},
            }
        )
        assert updated["session"]["audio"]["input"]["transcription"]["model"] == model


def test_one_vad_turn_produces_the_reference_event_order() -> None:
    _, driver = make()
    driver.pump()
    configure(driver, "server_vad", silence_duration_ms=300)
    events = driver.append(quiet(500)) + driver.append(tone(3200)) + driver.append(quiet(1000))
    assert types(events)[0] == "input_audio_buffer.speech_started"
    started = events[0]
    # Speech starts at 500 ms, inside the VAD frame that begins at 480 ms (32 ms frames); with 300 ms
    # of prefix padding the item's audio starts at 180 ms.
    assert started == {
        "type": "input_audio_buffer.speech_started",
        "audio_start_ms": 180,
        "item_id": "item_1",
    }
    stop = types(events).index("input_audio_buffer.speech_stopped")
    tail = events[stop:]
    assert types(tail) == [
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        *["conversation.item.input_audio_transcription.delta"] * (len(tail) - 5),
        "conversation.item.input_audio_transcription.completed",
    ]
    # 500 + 3200 ms of speech + the 300 ms pause that ended it, to the 32 ms frame grid.
    assert abs(tail[0]["audio_end_ms"] - 4000) <= 64
    assert tail[1] == {"type": "input_audio_buffer.committed", "previous_item_id": None, "item_id": "item_1"}
    item = {
        "id": "item_1",
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    assert tail[2] == {"type": "conversation.item.added", "previous_item_id": None, "item": item}
    assert tail[3] == {"type": "conversation.item.done", "previous_item_id": None, "item": item}
    completed = tail[-1]
    assert completed == {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "item_1",
        "content_index": 0,
        "transcript": "hello world this is a test",
        "usage": {"type": "duration", "seconds": 4},
    }


def test_live_deltas_stream_before_the_commit_and_add_up_to_the_transcript() -> None:
    _, driver = make()
    driver.pump()
    configure(driver, "server_vad", silence_duration_ms=300)
    speaking = driver.append(quiet(300)) + driver.append(tone(3000))
    early = [e["delta"] for e in speaking if e["type"].endswith("transcription.delta")]
    assert len(early) >= 3, "captions must stream while the person is still speaking"
    rest = driver.append(quiet(800))
    deltas = early + [e["delta"] for e in rest if e["type"].endswith("transcription.delta")]
    [completed] = [e for e in rest if e["type"].endswith("transcription.completed")]
    assert "".join(deltas) == completed["transcript"]
    assert not deltas[0].startswith(" ")
    assert all(d.startswith(" ") for d in deltas[1:])


def test_turns_are_linked_by_previous_item_id() -> None:
    _, driver = make()
    driver.pump()
    configure(driver, "server_vad", silence_duration_ms=300)
    events = (
        driver.append(tone(1000)) + driver.append(quiet(800)) + driver.append(tone(1000)) + driver.append(quiet(800))
    )
    committed = [e for e in events if e["type"] == "input_audio_buffer.committed"]
    assert committed == [
        {"type": "input_audio_buffer.committed", "previous_item_id": None, "item_id": "item_1"},
        {"type": "input_audio_buffer.committed", "previous_item_id": "item_1", "item_id": "item_2"},
    ]


def test_speech_resuming_in_a_pause_keeps_one_turn_and_drops_the_speculative_decode() -> None:
    _, driver = make(hold=True)
    driver.pump()
    configure(driver, "server_vad", silence_duration_ms=500)
    driver.append(tone(1000))
    driver.held.clear()  # partials not answered: irrelevant here
    driver.append(quiet(200))  # a short pause, as at a comma: no decode for it
    assert not [c for c in driver.held if c.final]
    driver.append(quiet(100))  # 250 ms before the 500 ms of silence end the turn, its final starts
    speculative = [c for c in driver.held if c.final]
    assert len(speculative) == 1
    events = driver.append(tone(1000))  # ...but the speaker goes on
    assert speculative[0].job_id in driver.cancelled
    assert "input_audio_buffer.speech_stopped" not in types(events)
    # A late result for the cancelled job is dropped by id.
    assert driver.resolve(speculative[0]) == []


def test_when_final_decodes_come_back_late_the_next_pause_speculates_at_once() -> None:
    _, driver = make(hold=True)
    driver.pump()
    configure(driver, "server_vad", silence_duration_ms=500)
    driver.append(tone(1000))
    driver.held.clear()
    driver.append(quiet(300))
    [slow] = [c for c in driver.held if c.final]
    driver.held.clear()
    driver.append(quiet(600))  # the turn ended and more audio came in: the decode took ~650 ms
    driver.resolve(slow)
    driver.append(tone(1000))
    driver.held.clear()
    driver.append(quiet(100))  # the next pause's final is asked at its start: it would be late otherwise
    assert [c for c in driver.held if c.final]


def test_a_pause_whose_speculative_decode_failed_asks_no_other_until_the_turn_ends() -> None:
    _, driver = make(hold=True)
    driver.pump()
    configure(driver, "server_vad", silence_duration_ms=500)
    driver.append(tone(1000))
    driver.held.clear()
    driver.append(quiet(300))
    [speculative] = [c for c in driver.held if c.final]
    driver.held.clear()
    driver.resolve(speculative, fail=True)
    driver.append(quiet(100))  # still in the same pause: no decode at every frame
    assert not driver.held
    driver.append(quiet(200))  # the turn ends: its real final decode
    assert [c for c in driver.held if c.final]


def test_a_turns_final_decode_asks_for_the_engines_most_accurate_decode() -> None:
    _, driver = make(hold=True)
    driver.pump()
    configure(driver, "server_vad", silence_duration_ms=300)
    driver.append(tone(1500))
    partials = list(driver.held)
    driver.held.clear()
    driver.append(quiet(1000))
    finals = [c for c in driver.held if c.final]
    assert partials
    assert not any(c.final or c.options.final for c in partials)
    assert finals
    assert all(c.options.final for c in finals)


def test_manual_commit_and_commit_empty() -> None:
    _, driver = make()
    driver.pump()
    configure(driver, None)
    [error] = driver.send({"type": "input_audio_buffer.commit", "event_id": "c0"})
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"
    assert error["error"]["event_id"] == "c0"
    driver.append(quiet(200))  # silence only
    events = driver.send({"type": "input_audio_buffer.commit", "event_id": "c1"})
    assert types(events) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
    ]
    assert events[-1]["transcript"] == ""  # silence is not sent to the model: nothing invented
    driver.append(tone(2200))
    events = driver.send({"type": "input_audio_buffer.commit"})
    assert events[0] == {
        "type": "input_audio_buffer.committed",
        "previous_item_id": "item_1",
        "item_id": "item_2",
    }
    assert events[-1]["transcript"] == "hello world this is"


def test_commit_under_100_ms_is_refused() -> None:
    _, driver = make()
    driver.pump()
    configure(driver, None)
    driver.append(tone(60))
    [error] = driver.send({"type": "input_audio_buffer.commit"})
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"
    assert "60.00ms" in error["error"]["message"]


def test_clear_forgets_the_turn() -> None:
    _, driver = make()
    driver.pump()
    configure(driver, None)
    driver.append(tone(1000))
    assert driver.send({"type": "input_audio_buffer.clear"})[-1] == {"type": "input_audio_buffer.cleared"}
    [error] = driver.send({"type": "input_audio_buffer.commit"})
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"


def test_engine_failure_is_reported_on_the_item() -> None:
    _, driver = make(asr=FakeTranscriber(fail_on_seconds=0.0))
    driver.pump()
    configure(driver, None)
    driver.append(tone(1000))
    events = driver.send({"type": "input_audio_buffer.commit"})
    assert events[-1] == {
        "type": "conversation.item.input_audio_transcription.failed",
        "item_id": "item_1",
        "content_index": 0,
        "error": {
            "type": "server_error",
            "code": "transcription_failed",
            "message": "fake transcriber failure",
            "param": None,
        },
    }
    driver.append(tone(500))  # the session goes on
    assert types(driver.send({"type": "input_audio_buffer.commit"}))[0] == "input_audio_buffer.committed"


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ({"type": "input_audio_buffer.append", "audio": "***not base64***"}, "invalid_value"),
        ({"type": "response.create"}, "invalid_value"),
        ({"type": "input_audio_buffer.append"}, "missing_required_parameter"),
        ({"type": "input_audio_buffer.append", "audio": "", "extra": 1}, "unknown_parameter"),
    ],
)
def test_bad_client_events_are_errors_and_the_session_goes_on(event: dict, code: str) -> None:
    _, driver = make()
    driver.pump()
    [error] = driver.send({**event, "event_id": "bad_1"})
    assert error["error"]["code"] == code
    assert error["error"]["event_id"] == "bad_1"
    configure(driver, None)
    driver.append(tone(500))
    assert types(driver.send({"type": "input_audio_buffer.commit"}))[0] == "input_audio_buffer.committed"


def test_oversized_append_is_refused_before_decoding() -> None:
    _, driver = make()
    driver.pump()
    huge = "A" * (21 * 1024 * 1024)
    [error] = driver.send({"type": "input_audio_buffer.append", "audio": huge})
    assert error["error"]["code"] == "input_audio_buffer_append_too_large"


def test_g711_input_is_decoded() -> None:
    import base64

    from openrealtime.audio.codec import AudioFormat, encode_audio
    from openrealtime.audio.resample import StreamResampler

    _, driver = make()
    driver.pump()
    driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcmu"},
                        "transcription": {"model": "whisper-1"},
                        "turn_detection": None,
                    }
                },
            },
        }
    )
    speech_8k = StreamResampler(24_000, 8_000).process(tone(2200), last=True)
    ulaw = encode_audio(speech_8k, AudioFormat.PCMU)
    driver.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(ulaw).decode()})
    events = driver.send({"type": "input_audio_buffer.commit"})
    assert events[-1]["transcript"] == "hello world this is"


class PositionTranscriber(FakeTranscriber):
    """Hears word k in the 500 ms block whose tone amplitude encodes k, wherever the decode starts."""

    def transcribe(self, audio, options):  # type: ignore[no-untyped-def]
        from openrealtime.contracts import Transcript, TranscriptSegment

        block = 8000  # 500 ms at 16 kHz
        words, segments = [], []
        for start in range(0, audio.size - block // 2, block):
            piece = audio[start : start + block // 4]
            k = round((float(np.sqrt(2 * np.mean(piece**2))) - 0.05) / 0.001)
            words.append(f"w{k}")
            segments.append(TranscriptSegment(f"w{k}", start / 16000, (start + block) / 16000))
        return Transcript(" ".join(words), tuple(segments), "en")


def test_long_turns_slide_the_decode_window() -> None:
    session, driver = make(asr=PositionTranscriber())
    driver.pump()
    configure(driver, "server_vad", silence_duration_ms=500)
    blocks = [tone(500, amplitude=0.05 + 0.001 * k) for k in range(120)]  # one minute of speech
    driver.append(np.concatenate(blocks))
    turn = session.buffer.turn
    assert turn is not None
    window_s = (session.buffer.buffer.end - turn.window_start) / 16_000
    assert window_s < 25, "a one-minute turn must not be decoded whole every time"
    events = driver.append(quiet(800))
    [completed] = [e for e in events if e["type"].endswith("completed")]
    # Every word once, in order, across the window slides (the first block is partly prefix padding).
    assert completed["transcript"].split() == [f"w{k}" for k in range(120)]


class RewritingTranscriber(PositionTranscriber):
    """Like Whisper on a growing window: each decode rewrites one of the words well before its end
    (a different one each time, as Whisper revises what it heard with more context)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def transcribe(self, audio, options):  # type: ignore[no-untyped-def]
        from openrealtime.contracts import Transcript

        exact = super().transcribe(audio, options)
        words = exact.text.split()
        self.calls += 1
        if len(words) > 5:
            at = (self.calls * 7) % (len(words) - 5)
            words[at] = "v" + words[at][1:]  # "w12" heard as "v12"
        return Transcript(" ".join(words), exact.segments, "en")


def test_a_long_unbroken_passage_commits_words_at_a_bounded_lag_and_adds_up_to_the_final() -> None:
    """Issue 14: 30 s of speech without a pause, decoded by an ASR that keeps rewriting words it
    already said. Before, a partial that disagreed with any word already sent sent nothing more, so
    captions stalled until the turn ended (word lag p95 8.8 s on a 12 s sentence). Now every word is
    shown within 1.5 s of being spoken, the deltas are append-only, and they add up to the final
    transcript (the whole turn's decode)."""
    _, driver = make(hold=True)
    partials, exact = RewritingTranscriber(), PositionTranscriber()
    configure(driver, "server_vad", silence_duration_ms=500)
    blocks = 60  # 500 ms each: word k is spoken from 0.5 k to 0.5 k + 0.5 s
    audio = np.concatenate([tone(500, amplitude=0.05 + 0.001 * k) for k in range(blocks)] + [quiet(1000)])
    shown_at: dict[str, float] = {}
    deltas: list[str] = []
    completed: list[dict] = []
    chunk = 2400
    for index in range(0, audio.size, chunk):
        events = driver.append(audio[index : index + chunk])
        while driver.held:
            job = driver.held.pop(0)
            asr = exact if job.final else partials
            driver.session.on_result(TranscriptReady(job.job_id, asr.transcribe(job.audio, job.options)))
            events += driver.pump()
        now_s = (index + chunk) / 24_000
        for event in events:
            if event["type"].endswith("transcription.delta"):
                deltas.append(event["delta"])
                for word in event["delta"].split():
                    shown_at.setdefault(word, now_s)
            elif event["type"].endswith("transcription.completed"):
                completed.append(event)
    [done] = completed
    expected = [f"w{k}" for k in range(blocks)]
    assert done["transcript"].split() == expected
    assert "".join(deltas) == done["transcript"]  # append-only deltas that add up to it
    lags = [shown_at[f"w{k}"] - (0.5 * k + 0.5) for k in range(blocks - 1)]  # the last waits for the end
    assert max(lags) <= 1.5, f"word lag up to {max(lags):.2f} s"
    # Captions were decoded live all along (not only at the end): about one decode a partial step.
    assert partials.calls > 0.8 * blocks * 500 / PARTIAL_STEP_MS


# --- live-caption cadence ------------------------------------------------------------------------


def _partials_per_chunk(driver: Driver, chunks: int) -> list[tuple[int, bool, str]]:
    """Stream ``chunks`` 100 ms chunks of speech, answering each decode at once.

    Returns, per partial decode: the chunk it was asked for after, its ``first_caption`` flag, and the
    delta its result produced.
    """
    seen = []
    for chunk in range(chunks):
        driver.append(tone(100))
        for job in list(driver.held):
            driver.held.remove(job)
            deltas = [e["delta"] for e in driver.resolve(job) if e["type"].endswith("transcription.delta")]
            assert not job.final
            assert not job.options.final
            seen.append((chunk, job.first_caption, "".join(deltas)))
    return seen


def test_partials_follow_every_chunk_until_the_first_words_then_every_third_chunk() -> None:
    # The fake hears two words a second, so two decodes agree on "hello" with a word after it once a
    # second of speech is in: chunk 10. Until then every chunk gets a decode, and they outrank others;
    # then one every PARTIAL_STEP_MS (300 ms: three chunks).
    _, driver = make(hold=True)
    driver.pump()
    configure(driver, "server_vad", silence_duration_ms=500)
    driver.append(quiet(300))
    assert _partials_per_chunk(driver, 20) == [
        *[(chunk, True, "") for chunk in range(1, 10)],
        (10, True, "hello"),
        (13, False, ""),
        (16, False, " world"),
        (19, False, ""),
    ]


def test_the_word_at_the_cut_of_the_audio_waits_for_a_decode_that_goes_past_it() -> None:
    # Two decodes that both end on "hello" agree on it, but it is where the audio was cut: a later
    # decode that hears a word after it lets it through.
    _, driver = make(hold=True, asr=FakeTranscriber(words_per_second=1.0))
    driver.pump()
    configure(driver, "server_vad", silence_duration_ms=500)
    driver.append(quiet(300))
    first = [(chunk, delta) for chunk, _, delta in _partials_per_chunk(driver, 21) if delta]
    assert first[0] == (20, "hello")  # two seconds in: the first decode to hear "world" as well


def test_a_buffer_that_sends_no_captions_decodes_partials_at_the_normal_step() -> None:
    # A realtime session transcribes every turn for the LLM, asked for captions or not; without
    # them, nobody waits for a first word, so there is no reason to decode more often or sooner.
    from openrealtime.protocol.config import AudioInput
    from openrealtime.session.commands import Transcribe, TranscriptReady
    from openrealtime.session.input_buffer import BufferOptions, InputAudioBuffer
    from openrealtime.session.signals import TurnHeard

    buffer = InputAudioBuffer(
        AudioInput(), vad=EnergyVad(), ids=Ids(deterministic=True), options=BufferOptions(always_transcribe=True)
    )
    asr = FakeTranscriber()
    buffer.append(quiet(300), 24_000, event_id=None)
    asked = []
    for chunk in range(12):
        jobs = [c for c in buffer.append(tone(100), 24_000, event_id=None) if isinstance(c, Transcribe)]
        for job in jobs:
            asked.append((chunk, job.first_caption))
            out = buffer.on_result(TranscriptReady(job.job_id, asr.transcribe(job.audio, job.options)))
            assert all(isinstance(o, TurnHeard) for o in out)  # no caption events: the session's own use
    # None urgent, and after the first (FIRST_PARTIAL_MS of speech in), one a PARTIAL_STEP_MS at most.
    chunks = [chunk for chunk, _ in asked]
    assert not any(first for _, first in asked)
    assert len(chunks) >= 3
    assert all(later - earlier >= PARTIAL_STEP_MS // 100 for earlier, later in itertools.pairwise(chunks))


# --- items, unsupported events, updates -------------------------------------------------------------


def committed_turn() -> tuple[TranscriptionSession, Driver]:
    """A manual-mode session with one committed, transcribed turn (``item_1``)."""
    session, driver = make()
    driver.pump()
    configure(driver, None)
    driver.append(tone(1000))
    driver.send({"type": "input_audio_buffer.commit"})
    return session, driver


invalid = error_event


def test_a_committed_item_is_retrieved_with_its_transcript_then_deleted() -> None:
    _, driver = committed_turn()
    retrieved = driver.send({"type": "conversation.item.retrieve", "event_id": "r1", "item_id": "item_1"})
    audio = base64.b64decode(retrieved[0]["item"]["content"][0].pop("audio"))  # the turn's, as OpenAI sends it
    assert len(audio) > 24_000  # over half a second of PCM16 at the input rate
    assert retrieved == [
        {
            "type": "conversation.item.retrieved",
            "item": {
                "id": "item_1",
                "object": "realtime.item",
                "type": "message",
                "status": "completed",
                "role": "user",
                "content": [{"type": "input_audio", "transcript": "hello"}],
            },
        }
    ]
    deleted = driver.send({"type": "conversation.item.delete", "event_id": "d1", "item_id": "item_1"})
    assert deleted == [{"type": "conversation.item.deleted", "item_id": "item_1"}]
    again = driver.send({"type": "conversation.item.retrieve", "event_id": "r2", "item_id": "item_1"})
    twice = driver.send({"type": "conversation.item.delete", "event_id": "d2", "item_id": "item_1"})
    assert again == [
        invalid(
            "item_retrieve_invalid_item_id",
            "Error retrieving item: the item with id 'item_1' does not exist.",
            "item_id",
            "r2",
        )
    ]
    assert twice == [
        invalid(
            "item_delete_invalid_item_id",
            "Error deleting item: the item with id 'item_1' does not exist.",
            "item_id",
            "d2",
        )
    ]


def test_an_item_whose_transcription_failed_is_retrieved_without_a_transcript() -> None:
    _, driver = make(asr=FakeTranscriber(fail_on_seconds=0.0))
    driver.pump()
    configure(driver, None)
    driver.append(tone(1000))
    driver.send({"type": "input_audio_buffer.commit"})
    [retrieved] = driver.send({"type": "conversation.item.retrieve", "item_id": "item_1"})
    assert retrieved["item"]["content"][0].pop("audio")  # its audio is kept all the same
    assert retrieved["item"]["content"] == [{"type": "input_audio", "transcript": None}]


@pytest.mark.parametrize(
    "event",
    [
        {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 0},
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        },
    ],
)
def test_conversation_events_of_voice_sessions_are_refused(event: dict) -> None:
    session, driver = committed_turn()
    before = session.effective_session()
    out = driver.send({**event, "event_id": "e1"})
    assert out == [
        invalid(
            "invalid_value",
            f"Invalid value: '{event['type']}'. This event is not supported in transcription sessions.",
            "type",
            "e1",
        )
    ]
    assert session.effective_session() == before
    [retrieved] = driver.send({"type": "conversation.item.retrieve", "item_id": "item_1"})
    assert retrieved["type"] == "conversation.item.retrieved"  # the item is untouched


def test_an_update_to_a_realtime_session_is_refused() -> None:
    session, driver = make()
    driver.pump()
    before = session.effective_session()
    out = driver.send({"type": "session.update", "event_id": "u1", "session": {"type": "realtime"}})
    assert out == [
        invalid(
            "invalid_value",
            "Invalid value: 'realtime'. This is a transcription session: session.type must be 'transcription'.",
            "session.type",
            "u1",
        )
    ]
    assert session.effective_session() == before


def test_transcription_delay_and_keywords_are_echoed_once_set() -> None:
    _, driver = make()
    driver.pump()
    transcription = {"model": "gpt-realtime-whisper", "delay": "low", "keywords": ["Ada"]}
    [updated] = driver.send(
        {
            "type": "session.update",
            "session": {"type": "transcription", "audio": {"input": {"transcription": transcription}}},
        }
    )
    assert updated["session"]["audio"]["input"]["transcription"] == {
        "model": "gpt-realtime-whisper",
        "language": None,
        "prompt": None,
        "keywords": ["Ada"],
        "delay": "low",
    }


def test_languages_is_echoed_when_set_and_left_out_when_not() -> None:
    """OpenAI's live service echoes ``languages`` only when set; pipecat's parser of the echoed
    transcription settings refused the ``"languages": null`` we sent (issue 12)."""
    _, driver = make()
    driver.pump()
    transcription = {"model": "gpt-4o-transcribe", "languages": ["en", "fr"]}
    [updated] = driver.send(
        {
            "type": "session.update",
            "session": {"type": "transcription", "audio": {"input": {"transcription": transcription}}},
        }
    )
    echoed = updated["session"]["audio"]["input"]["transcription"]
    assert echoed == {"model": "gpt-4o-transcribe", "language": None, "languages": ["en", "fr"], "prompt": None}


class RecordingNoise:
    """A noise suppressor that records its streams and silences everything it is given."""

    sample_rate_hz = 16_000

    def __init__(self) -> None:
        self.streams: list[tuple[str, float]] = []

    def new_stream(self, kind: str, strength: float) -> RecordingNoise:
        self.streams.append((kind, strength))
        return self

    def process(self, samples: np.ndarray) -> np.ndarray:
        return samples * 0


def test_noise_reduction_updates_start_the_denoiser_afresh_only_when_they_change_it() -> None:
    noise = RecordingNoise()
    info = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: m in KNOWN_MODELS)
    session = TranscriptionSession(info, vad=EnergyVad(), noise=noise, ids=Ids(deterministic=True))
    driver = Driver(session)
    driver.pump()

    def nr(value: object, event_id: str) -> list[dict]:
        audio = {"input": {"noise_reduction": value}}
        return driver.send(
            {"type": "session.update", "event_id": event_id, "session": {"type": "transcription", "audio": audio}}
        )

    [near] = nr({"type": "near_field"}, "u1")
    # An unset strength is left out of the echo (OpenAI's schema has no null strength); 1.0 applies.
    assert near["session"]["audio"]["input"]["noise_reduction"] == {"type": "near_field"}
    nr({"type": "near_field"}, "u2")  # the same setting: the same stream goes on
    nr({"type": "near_field", "strength": 0.25}, "u3")
    assert noise.streams == [("near_field", 1.0), ("near_field", 0.25)]
    # Denoised audio is what VAD hears: speech that the denoiser removed starts no turn.
    assert driver.append(tone(1000)) + driver.append(quiet(600)) == []
    # Off again: speech goes through and is heard.
    [off] = nr(None, "u4")
    assert off["session"]["audio"]["input"]["noise_reduction"] is None
    events = driver.append(tone(1000)) + driver.append(quiet(600))
    assert types(events)[:1] == ["input_audio_buffer.speech_started"]
    # A strength without a type is refused, and changes nothing.
    assert nr({"strength": 0.5}, "u5") == [
        invalid(
            "missing_required_parameter",
            "Missing required parameter: 'session.audio.input.noise_reduction.type'.",
            "session.audio.input.noise_reduction.type",
            "u5",
        )
    ]
    assert session.effective_session()["audio"]["input"]["noise_reduction"] is None
    assert noise.streams == [("near_field", 1.0), ("near_field", 0.25)]
