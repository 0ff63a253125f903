"""RemoteSynthesizer over httpx's MockTransport: the request, the streamed PCM, retries, failures."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.engines.remote_http import RemoteEndpoint, RemoteOptions
from openrealtime.engines.remote_tts import RemoteSynthesizer, RemoteTtsOptions
from openrealtime.exceptions import EngineError
from tests.engines.test_remote_asr import Recorder

URL = "http://tts.test/v1"
TONE = (0.2 * np.sin(np.arange(24_000, dtype=np.float32) / 8)).astype(np.float32)


def synthesizer(
    recorder: Recorder, *, voice_map: dict[str, str] | None = None
) -> tuple[RemoteSynthesizer, list[float]]:
    pauses: list[float] = []
    endpoint = RemoteEndpoint(
        RemoteOptions(URL), engine="tts", transport=httpx.MockTransport(recorder), sleep=pauses.append
    )
    options = RemoteTtsOptions(endpoint.options, model="kokoro", voice_map=voice_map or {})
    return RemoteSynthesizer(options, endpoint=endpoint), pauses


class Pieces(httpx.SyncByteStream):
    """A body that arrives in the given pieces (odd sizes included), then optionally breaks off."""

    def __init__(self, pieces: list[bytes], *, then: Exception | None = None) -> None:
        self.pieces = pieces
        self.then = then
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            self.sent += 1
            yield piece
        if self.then is not None:
            raise self.then


def pcm_answer(data: bytes, *, sizes: int = 777) -> httpx.Response:
    pieces = [data[i : i + sizes] for i in range(0, len(data), sizes)]
    return httpx.Response(200, headers={"content-type": "audio/pcm"}, stream=Pieces(pieces))


def test_streams_the_pcm_body_as_24khz_samples_and_sends_openais_request() -> None:
    data = float_to_pcm16(TONE)
    recorder = Recorder(pcm_answer(data))
    tts, _ = synthesizer(recorder, voice_map={"alloy": "af_bella"})
    chunks = list(tts.synthesize("Hello there.", voice="alloy", stop=threading.Event(), speed=1.5))
    audio = np.concatenate(chunks)
    assert tts.sample_rate_hz == 24_000
    assert audio.size == TONE.size
    assert np.abs(audio - TONE).max() < 1e-4
    assert len(chunks) > 1  # as it arrives, not at the end
    assert all(c.size >= 480 for c in chunks[:-1])  # at least 20 ms each (odd-sized pieces joined)
    [request] = recorder.requests
    assert str(request.url) == f"{URL}/audio/speech"
    assert json.loads(request.read()) == {
        "model": "kokoro",
        "input": "Hello there.",
        "voice": "af_bella",
        "response_format": "pcm",
        "speed": 1.5,
    }


def test_unmapped_voices_pass_through_and_speed_one_is_left_out() -> None:
    recorder = Recorder(pcm_answer(float_to_pcm16(TONE[:2400])))
    tts, _ = synthesizer(recorder, voice_map={"alloy": "af_bella"})
    list(tts.synthesize("Hi.", voice="echo", stop=threading.Event()))
    body = json.loads(recorder.requests[0].read())
    assert body["voice"] == "echo"
    assert "speed" not in body
    assert tts.voices()[:2] == ("alloy", "ash")
    assert tts.speaks("es")


def test_stop_ends_the_stream_between_pieces() -> None:
    body = Pieces([float_to_pcm16(TONE[i : i + 2400]) for i in range(0, TONE.size, 2400)])
    recorder = Recorder(httpx.Response(200, stream=body))
    tts, _ = synthesizer(recorder)
    stop = threading.Event()
    speech = tts.synthesize("A long answer.", voice="alloy", stop=stop)
    next(speech)
    stop.set()
    assert list(speech) == []
    assert body.sent < len(body.pieces)


def test_a_500_then_success_is_retried() -> None:
    recorder = Recorder(httpx.Response(500, text="warming up"), pcm_answer(float_to_pcm16(TONE[:4800])))
    tts, pauses = synthesizer(recorder)
    audio = np.concatenate(list(tts.synthesize("Hi.", voice="alloy", stop=threading.Event())))
    assert audio.size == 4800
    assert len(recorder.requests) == 2
    assert pauses == [0.05]


def test_connection_refused_is_an_engine_error() -> None:
    recorder = Recorder(httpx.ConnectError("[Errno 111] Connection refused"))
    tts, pauses = synthesizer(recorder)
    with pytest.raises(EngineError) as caught:
        list(tts.synthesize("Hi.", voice="alloy", stop=threading.Event()))
    assert caught.value.code == "tts_unavailable"
    assert len(recorder.requests) == 3
    assert len(pauses) == 2


def test_a_stream_that_stalls_mid_body_fails_and_is_not_retried() -> None:
    data = float_to_pcm16(TONE[:4800])
    recorder = Recorder(
        httpx.Response(200, stream=Pieces([data], then=httpx.ReadTimeout("timed out"))),
        pcm_answer(data),
    )
    tts, _ = synthesizer(recorder)
    speech = tts.synthesize("Hi.", voice="alloy", stop=threading.Event())
    assert next(speech).size == 4800  # the audio that came is played
    with pytest.raises(EngineError) as caught:
        next(speech)
    assert caught.value.code == "tts_unavailable"
    assert len(recorder.requests) == 1


def test_a_read_timeout_before_the_answer_is_an_engine_error() -> None:
    tts, pauses = synthesizer(Recorder(httpx.ReadTimeout("timed out")))
    with pytest.raises(EngineError) as caught:
        list(tts.synthesize("Hi.", voice="alloy", stop=threading.Event()))
    assert caught.value.code == "tts_unavailable"
    assert pauses == []


def test_compressed_audio_is_refused() -> None:
    recorder = Recorder(httpx.Response(200, headers={"content-type": "audio/mpeg"}, content=b"ID3..."))
    tts, _ = synthesizer(recorder)
    with pytest.raises(EngineError) as caught:
        list(tts.synthesize("Hi.", voice="alloy", stop=threading.Event()))
    assert caught.value.code == "tts_bad_response"


def test_blank_text_sends_nothing() -> None:
    recorder = Recorder(httpx.Response(500))
    tts, _ = synthesizer(recorder)
    assert list(tts.synthesize("  ", voice="alloy", stop=threading.Event())) == []
    assert recorder.requests == []
