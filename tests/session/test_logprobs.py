"""Transcription logprobs: each delta carries those of exactly its text, ``completed`` the whole
transcript's, only when ``include`` asks for them; the word grouping of tokens that spells them."""

from __future__ import annotations

from typing import Any

from openrealtime.contracts import TokenLogprob, TranscribeOptions, Transcript, TranscriptSegment
from openrealtime.engines.fake import EnergyVad, FakeChatModel
from openrealtime.session.captions import CaptionTracker
from openrealtime.session.ids import Ids
from openrealtime.session.logprobs import WordLogprobs, wants_logprobs, wire_logprobs, word_logprobs
from openrealtime.session.realtime import RealtimeInfo, RealtimeSession
from openrealtime.session.transcription import SessionInfo, TranscriptionSession
from tests.conftest import quiet, tone
from tests.session.driver import Driver, RealtimeDriver

INCLUDE = ["item.input_audio_transcription.logprobs"]


def tokens(*pieces: tuple[str, float]) -> Transcript:
    """A one-segment transcript of these ``(text, logprob)`` tokens, its text their joined text."""
    toks = tuple(TokenLogprob(text, logprob, text.encode(), i) for i, (text, logprob) in enumerate(pieces))
    text = "".join(t.text for t in toks).strip()
    return Transcript(text, (TranscriptSegment(text, 0.0, 1.0, tokens=toks),))


def transcription(include: list[str] | None, *, turn_detection: dict[str, Any] | None) -> Driver:
    info = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: m == "gpt-4o-transcribe")
    driver = Driver(TranscriptionSession(info, vad=EnergyVad(), ids=Ids(deterministic=True)))
    driver.pump()
    session: dict[str, Any] = {
        "type": "transcription",
        "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}, "turn_detection": turn_detection}},
    }
    if include is not None:
        session["include"] = include
    [updated] = driver.send({"type": "session.update", "session": session})
    assert updated["session"]["include"] == include
    return driver


def joined(entries: list[dict[str, Any]]) -> str:
    return "".join(e["token"] for e in entries)


def check_entries(entries: list[dict[str, Any]], text: str) -> None:
    assert joined(entries) == text
    assert b"".join(bytes(e["bytes"]) for e in entries) == text.encode()
    assert all(e["logprob"] <= 0 for e in entries)
    assert all(set(e) == {"token", "logprob", "bytes"} for e in entries)


# --- grouping tokens by word -----------------------------------------------------------------------


def test_tokens_are_grouped_by_the_words_of_the_text() -> None:
    words = word_logprobs(tokens((" Hello", -0.5), (",", -0.25), (" real", -0.125), ("-time", -1.0), ("!", 0.0)))
    assert words == [
        WordLogprobs((("Hello", -0.5), (",", -0.25))),
        WordLogprobs((("real", -0.125), ("-time", -1.0), ("!", 0.0))),
    ]
    assert wire_logprobs(words or [], space_before=False) == [
        {"token": "Hello", "logprob": -0.5, "bytes": list(b"Hello")},
        {"token": ",", "logprob": -0.25, "bytes": [44]},
        {"token": " real", "logprob": -0.125, "bytes": list(b" real")},
        {"token": "-time", "logprob": -1.0, "bytes": list(b"-time")},
        {"token": "!", "logprob": 0.0, "bytes": [33]},
    ]
    assert joined(wire_logprobs(words or [], space_before=True)) == " Hello, real-time!"


def test_a_space_token_and_a_split_character_go_with_the_token_after_them() -> None:
    # Whisper spells " 日本" as " " then "日本"; and a token may end inside a character: the engine
    # gives it the characters it completes (none), the next token the whole character.
    words = word_logprobs(tokens((" caf", -0.5), ("", -0.25), ("é", -0.25), (" ", -1.0), ("日本", -0.5)))
    assert words == [WordLogprobs((("caf", -0.5), ("é", -0.5))), WordLogprobs((("日本", -1.5),))]
    check_entries(wire_logprobs(words or [], space_before=True), " café 日本")


def test_no_tokens_or_tokens_that_do_not_spell_the_text_give_none() -> None:
    assert word_logprobs(Transcript("hello world")) is None  # not asked for
    bad = tokens((" hello", -0.1))
    assert word_logprobs(Transcript("hullo", bad.segments)) is None
    assert word_logprobs(tokens((" a b", -0.1))) is None  # whitespace inside a token: never from Whisper


def test_wants_logprobs() -> None:
    assert wants_logprobs(INCLUDE)
    assert not wants_logprobs(None)
    assert not wants_logprobs([])


def test_captions_keep_each_sent_words_tokens_through_a_revised_final() -> None:
    captions = CaptionTracker()

    def marks(text: str) -> list[WordLogprobs]:
        return [WordLogprobs(((w, -float(len(w))),)) for w in text.split()]

    assert captions.partial("the cat", marks("the cat")) == ""
    assert captions.partial("the cat sat", marks("the cat sat")) == "the cat"
    # The final revises "cat" into "hat": what was sent stays, the rest is appended with its tokens.
    assert captions.final("the hat sat down", marks("the hat sat down")) == " sat down"
    assert captions.sent == ["the", "cat", "sat", "down"]
    assert captions.sent_logprobs == [*marks("the cat"), *marks("sat down")]


# --- the transcription session ---------------------------------------------------------------------


def test_a_committed_turn_carries_its_logprobs_on_its_deltas_and_the_completed_event() -> None:
    driver = transcription(INCLUDE, turn_detection=None)
    events = driver.append(tone(1500)) + driver.send({"type": "input_audio_buffer.commit"})
    step = 0.125  # the fake's tokens: "hello" is " hell" + "o", "world" is " worl" + "d"
    hello = [
        {"token": "hell", "logprob": -step, "bytes": list(b"hell")},
        {"token": "o", "logprob": -2 * step, "bytes": list(b"o")},
    ]
    world = [
        {"token": " worl", "logprob": -3 * step, "bytes": list(b" worl")},
        {"token": "d", "logprob": -step, "bytes": list(b"d")},
    ]
    delta = {"type": "conversation.item.input_audio_transcription.delta", "item_id": "item_1", "content_index": 0}
    assert [e for e in events if "input_audio_transcription" in e["type"]] == [
        {**delta, "delta": "hello", "logprobs": hello},
        {**delta, "delta": " world", "logprobs": world},
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_1",
            "content_index": 0,
            "transcript": "hello world",
            "usage": {"type": "duration", "seconds": 2},
            "logprobs": hello + world,
        },
    ]


def test_live_deltas_each_carry_the_logprobs_of_exactly_their_text() -> None:
    driver = transcription(INCLUDE, turn_detection={"type": "server_vad", "silence_duration_ms": 300})
    events = driver.append(quiet(300)) + driver.append(tone(4000)) + driver.append(quiet(800))
    deltas = [e for e in events if e["type"].endswith("transcription.delta")]
    [completed] = [e for e in events if e["type"].endswith("transcription.completed")]
    assert len(deltas) >= 3
    for delta in deltas:
        check_entries(delta["logprobs"], delta["delta"])
    check_entries(completed["logprobs"], completed["transcript"])
    assert [e for d in deltas for e in d["logprobs"]] == completed["logprobs"]


def test_without_include_nothing_changes_and_decodes_skip_logprobs() -> None:
    driver = transcription(None, turn_detection={"type": "server_vad", "silence_duration_ms": 300})
    asked: list[TranscribeOptions] = []
    transcribe = driver.asr.transcribe

    def spy(audio: Any, options: TranscribeOptions) -> Transcript:
        asked.append(options)
        return transcribe(audio, options)

    driver.asr.transcribe = spy  # type: ignore[method-assign]
    events = driver.append(tone(2000)) + driver.append(quiet(800))
    assert asked
    assert not any(o.logprobs or o.word_timestamps for o in asked)
    transcription_events = [e for e in events if "transcription" in e["type"]]
    assert transcription_events
    assert all("logprobs" not in e for e in transcription_events)


def test_include_set_mid_turn_leaves_out_logprobs_it_cannot_give() -> None:
    # Words sent before the include have no tokens: the last delta of that turn cannot carry them
    # all; the completed event comes from the final decode of the whole turn, asked for after the
    # include, so it has them all; a turn after that has them everywhere.
    driver = transcription(None, turn_detection={"type": "server_vad", "silence_duration_ms": 300})
    early = driver.append(tone(2000))
    assert any(e["type"].endswith("transcription.delta") for e in early)
    driver.send({"type": "session.update", "session": {"type": "transcription", "include": INCLUDE}})
    first = driver.append(tone(1000)) + driver.append(quiet(800))
    [completed] = [e for e in first if e["type"].endswith("transcription.completed")]
    check_entries(completed["logprobs"], completed["transcript"])
    second = driver.append(tone(1000)) + driver.append(quiet(800))
    [completed] = [e for e in second if e["type"].endswith("transcription.completed")]
    check_entries(completed["logprobs"], completed["transcript"])


def test_a_silent_turn_completes_with_no_logprobs_entries() -> None:
    driver = transcription(INCLUDE, turn_detection=None)
    driver.append(quiet(500))
    events = driver.send({"type": "input_audio_buffer.commit"})
    [completed] = [e for e in events if e["type"].endswith("transcription.completed")]
    assert completed["transcript"] == ""
    assert completed["logprobs"] == []


# --- the realtime session --------------------------------------------------------------------------


def test_a_realtime_session_with_include_sends_logprobs_on_its_transcription_events() -> None:
    base = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: m == "whisper-1")
    info = RealtimeInfo(base=base, model="gpt-realtime", instructions="Be brief.")
    session = RealtimeSession(info, vad=EnergyVad(), ids=Ids(deterministic=True))
    driver = RealtimeDriver(session, chat=FakeChatModel())
    driver.pump()
    driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "include": INCLUDE,
                "audio": {
                    "input": {
                        "transcription": {"model": "whisper-1"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
                    }
                },
            },
        }
    )
    events = driver.append(tone(2500)) + driver.append(quiet(800))
    deltas = [e for e in events if e["type"].endswith("transcription.delta")]
    [completed] = [e for e in events if e["type"].endswith("transcription.completed")]
    assert deltas
    for delta in deltas:
        check_entries(delta["logprobs"], delta["delta"])
    check_entries(completed["logprobs"], completed["transcript"])
