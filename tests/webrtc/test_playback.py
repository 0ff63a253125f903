"""The call's playback buffer and track, without a network: frames, accounting, events, pacing."""

from __future__ import annotations

import asyncio
from typing import Any

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from openrealtime.session.commands import PlaybackCleared, PlaybackStarted, PlaybackStopped, PlayedItem
from openrealtime.webrtc.media import CallMedia, PlaybackTrack, mono
from openrealtime.webrtc.playback import FRAME_SAMPLES, PlaybackQueue

SPEECH = 24_000


def speech(ms: int, value: float = 0.5) -> np.ndarray:
    return np.full(SPEECH * ms // 1000, value, dtype=np.float32)


def frames(queue: PlaybackQueue, n: int) -> tuple[np.ndarray, list[Any]]:
    audio, notices = [], []
    for _ in range(n):
        frame, more = queue.next_frame()
        audio.append(frame)
        notices += more
    return np.concatenate(audio), notices


def test_silence_when_idle() -> None:
    queue = PlaybackQueue()
    frame, notices = queue.next_frame()
    assert frame.shape == (FRAME_SAMPLES,)
    assert not frame.any()
    assert notices == []
    assert queue.idle


def test_a_response_starts_plays_in_order_and_stops_after_its_end() -> None:
    queue = PlaybackQueue()
    queue.play("resp_1", "item_1", speech(100))
    queue.play("resp_1", "item_1", speech(100))
    audio, notices = frames(queue, 5)
    assert notices == [PlaybackStarted("resp_1")]
    queue.end("resp_1")  # its resampler's tail follows; it stops once that has played too
    audio2, notices2 = frames(queue, 10)
    assert notices2 == [PlaybackStopped("resp_1")]
    played = np.concatenate([audio, audio2])
    assert 0.19 < np.count_nonzero(played > 0.25) / 48_000 < 0.21  # 200 ms of speech, at 48 kHz
    assert queue.idle


def test_a_response_that_runs_dry_plays_silence_without_stopping() -> None:
    queue = PlaybackQueue()
    queue.play("resp_1", "item_1", speech(40))
    _, notices = frames(queue, 6)
    assert notices == [PlaybackStarted("resp_1")]  # underrun: silence, no stop while it may say more
    queue.play("resp_1", "item_1", speech(40))
    queue.end("resp_1")
    _, notices = frames(queue, 6)
    assert notices == [PlaybackStopped("resp_1")]


def test_clear_reports_what_was_played_of_each_item() -> None:
    queue = PlaybackQueue()
    queue.play("resp_1", "item_1", speech(1000))
    queue.end("resp_1")
    queue.play("resp_2", "item_2", speech(500))
    frames(queue, 25)  # 500 ms of item_1 handed out
    cleared = queue.clear()
    assert isinstance(cleared, PlaybackCleared)
    assert cleared.played == (PlayedItem("resp_1", "item_1", 500), PlayedItem("resp_2", "item_2", 0))
    audio, notices = frames(queue, 5)
    assert not audio.any()
    assert notices == []
    assert queue.clear() == PlaybackCleared(())


def test_a_response_with_no_audio_has_no_events() -> None:
    queue = PlaybackQueue()
    queue.end("resp_1")
    assert frames(queue, 2)[1] == []


def test_mono_mixes_the_channels_of_packed_and_planar_frames() -> None:
    stereo = np.array([[1000, 3000, -2000, -4000]], dtype=np.int16)  # L R L R
    frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
    assert np.allclose(mono(frame), [2000 / 32768, -3000 / 32768])
    planar = av.AudioFrame.from_ndarray(
        np.array([[0.5, -0.5], [0.1, 0.3]], dtype=np.float32), format="fltp", layout="stereo"
    )
    assert np.allclose(mono(planar), [0.3, -0.1])


async def test_the_track_paces_frames_on_the_loop_clock() -> None:
    queue = PlaybackQueue()
    track = PlaybackTrack(queue)
    loop = asyncio.get_running_loop()
    first = await track.recv()
    started = loop.time()
    for _ in range(5):
        frame = await track.recv()
    elapsed = loop.time() - started
    assert 0.095 <= elapsed < 1.0  # five more 20 ms frames: never faster than real time
    assert frame.pts == 5 * FRAME_SAMPLES
    assert first.sample_rate == 48_000
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_call_media_plays_ends_and_clears_through_its_queue() -> None:
    from openrealtime.session.commands import PlayAudio

    media = CallMedia()
    media.play(PlayAudio("resp_1", "item_1", speech(100)))
    media.end("resp_1")
    assert not media.queue.idle
    assert media.clear() == PlaybackCleared((PlayedItem("resp_1", "item_1", 0),))
    await media.stop()
