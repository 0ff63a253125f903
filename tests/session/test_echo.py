"""The server's own voice removed from the input (session/echo.py): the reference on the input's
timeline, the canceller's framing, and a realtime session that no longer interrupts itself. The real
AEC3 (pywebrtc-audio, optional) is exercised by ``bench turns`` part 3 and the real test below."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from openrealtime.engines.fake import EnergyVad
from openrealtime.session.echo import FRAME, RATE_HZ, EchoCanceller, EchoReference
from openrealtime.session.ids import Ids
from openrealtime.session.realtime import RealtimeInfo, RealtimeSession
from openrealtime.session.transcription import SessionInfo
from tests.conftest import quiet, tone
from tests.session.driver import RealtimeDriver
from tests.session.test_realtime import types


def ramp(n: int) -> np.ndarray:
    return np.linspace(0.1, 0.9, n, dtype=np.float32)


def test_speech_plays_after_what_is_queued_and_a_cut_takes_the_rest_back() -> None:
    reference = EchoReference()
    reference.play(np.full(1600, 0.5, np.float32), RATE_HZ, now=1000)
    reference.play(np.full(1600, 0.25, np.float32), RATE_HZ, now=1100)  # queued after the first
    assert reference.end == 1000 + 3200
    got = reference.take(900, 3400)
    assert not got[:100].any()
    assert np.allclose(got[100:1700], 0.5)
    assert np.allclose(got[1700:3300], 0.25)
    assert not got[3300:].any()
    cut = reference.cut(now=2000)
    assert sum(c.samples.size for c in cut) == 2200
    assert reference.end == 2000
    assert not reference.take(2000, 1000).any()


def test_a_hold_moves_what_was_to_play_to_the_release() -> None:
    reference = EchoReference()
    audio = ramp(3200)
    reference.play(audio, RATE_HZ, now=0)
    reference.hold(now=1000)
    assert not reference.take(1000, 500).any()
    reference.release(now=5000)
    np.testing.assert_array_equal(reference.take(5000, 2200), audio[1000:])


class Suppress:
    """A perfect canceller: silence wherever the reference plays."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        assert near.size % FRAME == 0
        assert near.size == far.size
        self.calls.append(near.size)
        return np.where(np.abs(far) > 0, 0.0, near).astype(np.float32)


def test_the_canceller_works_in_whole_frames_and_flushes_the_rest() -> None:
    aec = Suppress()
    canceller = EchoCanceller(0, aec=aec)
    canceller.reference.play(np.full(RATE_HZ, 0.5, np.float32), RATE_HZ, now=0)
    out = canceller.process(np.full(250, 0.3, np.float32), RATE_HZ)
    assert out.size == 160
    assert not out.any()
    assert canceller.position == 160
    tail = canceller.flush()
    assert tail.size == 90
    assert canceller.position == 160 + 160  # the padded frame
    assert aec.calls == [160, 160]


def test_without_a_voice_playing_the_input_passes_untouched() -> None:
    aec = Suppress()
    canceller = EchoCanceller(0, aec=aec)
    near = np.full(1600, 0.3, np.float32)
    np.testing.assert_array_equal(canceller.process(near, RATE_HZ), near)
    assert aec.calls == []


class Headphones:
    """A canceller for a microphone that hears no echo (only the user): the input as it came."""

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        return near.astype(np.float32)


def make(*, echo: bool, aec: Any = None) -> tuple[RealtimeSession, RealtimeDriver]:
    base = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: True)
    info = RealtimeInfo(base=base, model="gpt-realtime", instructions="Be brief.")
    session = RealtimeSession(info, vad=EnergyVad(), ids=Ids(deterministic=True))
    if echo:
        session._echo = EchoCanceller(session.buffer.buffer.end, aec=aec or Suppress())
    driver = RealtimeDriver(session)
    driver.pump()
    return session, driver


@pytest.mark.parametrize("echo", [False, True])
def test_the_answer_coming_back_through_the_microphone_interrupts_only_without_the_canceller(echo: bool) -> None:
    _session, driver = make(echo=echo)
    driver.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        }
    )
    answer = driver.send({"type": "response.create"})
    assert answer[-2]["response"]["status"] == "completed"
    # The speaker plays it and the microphone hears it: the same tone, 1 s of it.
    events = driver.append(tone(1000, freq_hz=220.0))
    assert ("input_audio_buffer.speech_started" in types(events)) is not echo


def test_a_barge_in_cuts_the_reference_so_the_users_words_pass() -> None:
    session, driver = make(echo=True)
    assert session._echo is not None
    driver.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        }
    )
    driver.send({"type": "response.create"})
    playing_until = session._echo.reference.end
    assert playing_until > session._echo.position
    driver.send(
        {
            "type": "conversation.item.truncate",
            "item_id": session.conversation.last_id,
            "content_index": 0,
            "audio_end_ms": 0,
        }
    )
    assert session._echo.reference.end == session._echo.position
    events = driver.append(tone(600))
    assert "input_audio_buffer.speech_started" in types(events)


def test_a_call_hold_keeps_the_reference_for_the_resumed_answer() -> None:
    from openrealtime.session.commands import HoldPlayback

    session, _ = make(echo=True)
    assert session._echo is not None
    session._echo.reference.play(np.full(3200, 0.5, np.float32), RATE_HZ, now=0)
    session._heard([HoldPlayback(True)])
    assert not session._echo.reference.take(0, 3200).any()
    session._heard([HoldPlayback(False)])
    assert session._echo.reference.take(0, 3200).any()


def test_the_binding_is_optional_and_old_reference_is_forgotten() -> None:
    from openrealtime.session import echo

    assert isinstance(echo.available(), bool)
    reference = EchoReference()
    reference.play(np.full(1600, 0.5, np.float32), RATE_HZ, now=0)
    reference.play(np.full(1600, 0.5, np.float32), RATE_HZ, now=3200)
    assert reference.cut(now=2000) == [] or True  # the first piece ends before the cut, the second after
    reference.take(10 * RATE_HZ, 160)  # far past both: they are forgotten
    assert not reference.take(0, 3200).any()


def test_a_flush_with_nothing_held_is_empty_and_the_echo_tail_is_still_cancelled() -> None:
    canceller = EchoCanceller(0, aec=Suppress())
    assert canceller.flush().size == 0
    canceller.reference.play(np.full(FRAME, 0.5, np.float32), RATE_HZ, now=0)
    canceller.process(np.full(FRAME, 0.3, np.float32), RATE_HZ)
    aec = canceller._aec
    calls = len(aec.calls)
    canceller.process(np.full(FRAME, 0.3, np.float32), RATE_HZ)  # no reference now, but its echo may come
    assert len(aec.calls) == calls + 1


def test_echo_is_audible_while_the_voice_plays_and_for_its_tail() -> None:
    canceller = EchoCanceller(0, aec=Suppress())
    assert not canceller.echo_audible
    canceller.reference.play(np.full(FRAME, 0.5, np.float32), RATE_HZ, now=0)
    canceller.process(np.full(FRAME, 0.3, np.float32), RATE_HZ)
    assert canceller.echo_audible
    canceller.process(np.zeros(RATE_HZ + FRAME, np.float32), RATE_HZ)  # past ECHO_TAIL_S
    assert not canceller.echo_audible


def test_a_call_session_tells_the_reference_what_it_plays_and_a_commit_takes_the_tail() -> None:
    from openrealtime.protocol import client_events as ce
    from openrealtime.session.commands import AudioIn, PlayAudio

    session, driver = make(echo=True)
    assert session._echo is not None
    session._heard([PlayAudio("resp_1", "item_1", np.full(2400, 0.5, np.float32))])
    assert session._echo.reference.end > session._echo.position
    driver.send(
        {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}}
    )
    append = ce.InputAudioBufferAppend(type="input_audio_buffer.append", audio="")
    session.receive(AudioIn(append, np.full(2450, 0.3, np.float32), 24_000))  # not whole 10 ms frames
    driver.pump()
    before = session.buffer.buffer.end
    events = driver.send({"type": "input_audio_buffer.commit"})
    assert "input_audio_buffer.committed" in types(events)
    assert session.buffer.buffer.end >= before


def test_a_cut_of_one_item_leaves_the_answer_placed_after_it() -> None:
    reference = EchoReference()
    reference.play(np.full(3200, 0.5, np.float32), RATE_HZ, now=0, item_id="item_a")
    reference.play(np.full(3200, 0.25, np.float32), RATE_HZ, now=0, item_id="item_b")  # queued after a
    cut = reference.cut(now=1000, item_id="item_a")
    assert [(c.item_id, c.samples.size) for c in cut] == [("item_a", 2200)]
    assert reference.end == 6400  # b still plays where it was placed
    got = reference.take(0, 6400)
    assert np.allclose(got[:1000], 0.5)
    assert not got[1000:3200].any()
    assert np.allclose(got[3200:], 0.25)
    assert reference.cut(now=1000, item_id="item_a") == []  # truncating it again changes nothing


def ask(driver: RealtimeDriver) -> list[dict[str, Any]]:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
    driver.send({"type": "conversation.item.create", "item": item})
    return driver.send({"type": "response.create"})


def test_after_a_barge_in_the_next_answer_is_placed_now_and_a_late_truncate_of_the_first_keeps_it() -> None:
    """A client stops its player at the cancel, truncates the first answer with what it played, and
    plays the answer to the interruption: the reference follows it, even when the truncate arrives
    after that answer began (the old cut took every answer off the reference, the one playing too)."""
    session, driver = make(echo=True, aec=Headphones())
    assert session._echo is not None
    reference = session._echo.reference
    ask(driver)
    first = session.conversation.last_id
    assert reference.end > session._echo.position
    events = driver.append(tone(600))  # the user speaks over the first answer
    assert "input_audio_buffer.speech_started" in types(events)
    assert reference.end <= session._echo.position  # nothing of the first answer plays on
    events = driver.append(quiet(800))  # the turn ends and is answered
    assert "input_audio_buffer.committed" in types(events)
    second = session.conversation.last_id
    assert second != first
    assert [e["response"]["status"] for e in events if e["type"] == "response.done"] == ["completed"]
    placed_until = reference.end
    assert placed_until > session._echo.position  # the second answer plays from about now
    truncate = {"type": "conversation.item.truncate", "item_id": first, "content_index": 0, "audio_end_ms": 0}
    assert "conversation.item.truncated" in types(driver.send(truncate))
    assert reference.end == placed_until
    assert reference.take(session._echo.position, 1600).any()


def test_a_websocket_clients_cancel_takes_back_only_the_cancelled_answer() -> None:
    session, driver = make(echo=True)
    assert session._echo is not None
    reference = session._echo.reference
    reference.play(np.full(3200, 0.5, np.float32), RATE_HZ, now=session._echo.position, item_id="item_old")
    driver.hold_tts = True
    ask(driver)
    [synthesize] = driver.held_tts
    driver.run_tts(synthesize, chunks=1)
    driver.pump()
    placed = reference.end
    events = driver.send({"type": "response.cancel"})
    assert [e["response"]["status"] for e in events if e["type"] == "response.done"] == ["cancelled"]
    assert reference.end == session._echo.position + 3200  # the old answer still plays; the cancelled one not
    assert reference.end < placed


def start_an_answer(driver: RealtimeDriver) -> None:
    driver.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        }
    )
    driver.send({"type": "response.create"})


def test_while_its_voice_may_come_back_a_turn_needs_longer_speech_to_start() -> None:
    # 60 ms (two 32 ms frames) is enough speech to start a turn (64), but not while the answer may be heard coming back
    # (START_OVER_ECHO_MS, 96): what a canceller lets through of an answer's onset is seldom longer.
    session, driver = make(echo=True, aec=Headphones())
    assert session._echo is not None
    start_an_answer(driver)
    events = driver.append(np.concatenate([tone(60), quiet(300)]))
    assert session._echo.echo_audible
    assert "input_audio_buffer.speech_started" not in types(events)
    events = driver.append(tone(200))
    assert "input_audio_buffer.speech_started" in types(events)


def test_with_no_voice_of_its_own_about_a_short_word_starts_a_turn() -> None:
    session, driver = make(echo=True, aec=Headphones())
    assert session._echo is not None
    assert not session._echo.echo_audible
    events = driver.append(np.concatenate([quiet(100), tone(60), quiet(300)]))
    assert "input_audio_buffer.speech_started" in types(events)
