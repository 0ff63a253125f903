"""Pausing a player (the ``adaptive`` barge-in, issue 13): silence at once, the queue kept, and play
going on from the very sample it stopped at; a stop ends the pause."""

from __future__ import annotations

import sys
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest

from openrealtime.client.assistant import Assistant, Truncation
from openrealtime.client.assistant_config import AssistantOptions
from openrealtime.client.playback import ClockPlayer, SpeakerPlayer, interrupt
from tests.client.test_assistant import (
    RATE_HZ,
    SAMPLES_PER_MS,
    FakeClock,
    FakeServer,
    audio_ms,
    start_answer,
)
from tests.conftest import TIMEOUT_S


def test_a_paused_clock_player_stands_still_and_resumes_from_the_same_sample() -> None:
    clock = FakeClock()
    player = ClockPlayer(RATE_HZ, clock=clock)
    player.play("a", audio_ms(1000))
    clock.now_s += 0.25
    player.pause()
    assert player.paused
    clock.now_s += 0.5  # held: nothing plays
    player.play("a", audio_ms(200))  # audio that arrives while paused is queued after the rest
    assert (player.played_ms("a"), player.playing, player.idle_s()) == (250, True, 0.0)
    player.resume()
    assert not player.paused
    clock.now_s += 0.5
    assert player.played_ms("a") == 750  # 250 before the pause, 500 after it: nothing lost or skipped
    clock.now_s += 10.0
    assert (player.played_ms("a"), player.playing) == (1200, False)


def test_an_interruption_while_paused_cuts_to_what_was_heard_before_the_pause() -> None:
    clock = FakeClock()
    player = ClockPlayer(RATE_HZ, clock=clock)
    player.play("a", audio_ms(1000))
    clock.now_s += 0.25
    player.pause()
    clock.now_s += 0.6
    cut = interrupt(player)
    assert (cut.cut, cut.played_ms, cut.received_ms) == (("a",), {"a": 250}, {"a": 1000})
    assert not player.paused  # a stop ends the pause: the next answer plays when it comes
    player.play("b", audio_ms(100))
    clock.now_s += 0.125
    assert player.played_ms("b") == 100


def test_resume_without_a_pause_and_a_second_pause_change_nothing() -> None:
    clock = FakeClock()
    player = ClockPlayer(RATE_HZ, clock=clock)
    player.play("a", audio_ms(500))
    player.resume()
    clock.now_s += 0.125
    player.pause()
    clock.now_s += 0.125
    player.pause()
    player.resume()
    clock.now_s += 0.125
    assert player.played_ms("a") == 250


def test_a_paused_speaker_player_hands_the_device_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    streams: list[Any] = []

    class RawOutputStream:  # stands in for PortAudio: the test plays the device's part
        def __init__(self, **kwargs: Any) -> None:
            self.callback = kwargs["callback"]
            self.blocksize = kwargs["blocksize"]
            streams.append(self)

        def start(self) -> None: ...
        def stop(self) -> None: ...
        def close(self) -> None: ...

    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(RawOutputStream=RawOutputStream))
    player = SpeakerPlayer(RATE_HZ)
    device = streams[0]
    player.play("a", b"\x01\x00" * 50 * SAMPLES_PER_MS)
    block = bytearray(device.blocksize * 2)
    device.callback(block, device.blocksize, None, None)
    player.pause()
    device.callback(block, device.blocksize, None, None)
    assert block == bytearray(len(block))  # silence, and nothing taken from the queue
    assert (player.played_ms("a"), player.playing, player.paused) == (20, True, True)
    player.resume()
    device.callback(block, device.blocksize, None, None)
    assert block == bytearray(b"\x01\x00" * device.blocksize)
    assert player.played_ms("a") == 40
    player.pause()
    assert player.stop() == ["a"]
    assert not player.paused
    player.close()


# --- the assistant, against a scripted stand-in server ---------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeServer]:
    async with FakeServer() as server:
        yield server


async def test_the_assistant_pauses_at_speech_started_and_resumes_or_cuts_at_the_verdict(fake: FakeServer) -> None:
    clock = FakeClock()
    player = ClockPlayer(RATE_HZ, clock=clock)
    options = AssistantOptions(url=fake.url, turn_detection={"type": "server_vad", "barge_in": "adaptive"})
    async with Assistant(options, player=player) as assistant:
        session = await fake.session(0)
        td = assistant.turns.session["audio"]["input"]["turn_detection"]
        assert td["barge_in"] == "adaptive"  # as the server echoed it: it will send its verdicts
        await start_answer(session, 1000)
        await assistant.wait_until(lambda: player.ledger.received_ms("item_A") == 1000, timeout_s=TIMEOUT_S)
        clock.now_s += 0.25
        await session.push({"type": "input_audio_buffer.speech_started", "audio_start_ms": 900, "item_id": "u1"})
        await assistant.wait_until(lambda: player.paused, timeout_s=TIMEOUT_S)
        clock.now_s += 0.5  # "mm-hm": held
        await session.push({"type": "input_audio_buffer.speech_judged", "item_id": "u1", "interruption": False})
        await assistant.wait_until(lambda: not player.paused, timeout_s=TIMEOUT_S)
        assert player.played_ms("item_A") == 250  # goes on from where it stopped
        clock.now_s += 0.25
        await session.push({"type": "input_audio_buffer.speech_started", "audio_start_ms": 2000, "item_id": "u2"})
        await assistant.wait_until(lambda: player.paused, timeout_s=TIMEOUT_S)
        clock.now_s += 0.5  # "wait, ...": held, then cut
        await session.push({"type": "input_audio_buffer.speech_judged", "item_id": "u2", "interruption": True})
        truncate = await session.wait_for(lambda e: e["type"] == "conversation.item.truncate")
        assert truncate["audio_end_ms"] == 500  # what was heard: 250 before each pause
        assert assistant.truncations == [Truncation("item_A", 500, 1000)]
        assert not player.playing


def test_the_verdict_event_is_typed_by_the_clients_lenient_parser() -> None:
    from openrealtime.protocol.codec import server_event_from_dict
    from openrealtime.protocol.extension_events import SpeechJudged

    event = server_event_from_dict({"type": "input_audio_buffer.speech_judged", "item_id": "u1", "interruption": True})
    assert isinstance(event, SpeechJudged)
    assert (event.item_id, event.interruption) == ("u1", True)


def test_the_assistant_cli_asks_for_a_barge_in_only_when_told() -> None:
    from openrealtime.cli import build_parser

    assert build_parser().parse_args(["assistant", "q.wav", "--barge-in", "adaptive"]).barge_in == "adaptive"
    assert build_parser().parse_args(["assistant", "q.wav"]).barge_in is None
