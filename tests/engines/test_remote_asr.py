"""RemoteTranscriber over httpx's MockTransport: the upload, each answer format, retries, failures."""

from __future__ import annotations

import io
import wave
from collections.abc import Callable

import httpx
import numpy as np
import pytest

from openrealtime.contracts import TranscribeOptions
from openrealtime.engines.remote_asr import RemoteAsrOptions, RemoteTranscriber, wav_bytes
from openrealtime.engines.remote_http import RemoteEndpoint, RemoteOptions, retry_pauses
from openrealtime.exceptions import EngineError

URL = "http://asr.test/v1"
ONE_SECOND = (0.1 * np.sin(np.arange(16_000, dtype=np.float32) / 10)).astype(np.float32)

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that answers from a script and keeps every request it saw."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def transcriber(
    handler: Handler, *, model: str = "whisper-1", retries: int = 2
) -> tuple[RemoteTranscriber, list[float]]:
    pauses: list[float] = []
    endpoint = RemoteEndpoint(
        RemoteOptions(URL, api_key="k-1", retries=retries),
        engine="asr",
        transport=httpx.MockTransport(handler),
        sleep=pauses.append,
    )
    codes = {"english": "en", "spanish": "es"}
    return RemoteTranscriber(
        RemoteAsrOptions(endpoint.options, model=model, language_codes=codes), endpoint=endpoint
    ), pauses


def form(request: httpx.Request) -> dict[str, list[str]]:
    """The text fields of a multipart request, by name."""
    body = request.read().decode("latin-1")
    boundary = request.headers["content-type"].split("boundary=")[1]
    fields: dict[str, list[str]] = {}
    for part in body.split(f"--{boundary}")[1:-1]:
        head, _, value = part.partition("\r\n\r\n")
        name = head.split('name="')[1].split('"')[0]
        if "filename=" not in head:
            fields.setdefault(name, []).append(value.removesuffix("\r\n"))
    return fields


def test_json_answer_and_what_was_sent() -> None:
    recorder = Recorder(httpx.Response(200, json={"text": " Hello world. "}))
    asr, pauses = transcriber(recorder, model="tiny.en")
    transcript = asr.transcribe(ONE_SECOND, TranscribeOptions(language="en", prompt="Hi"))
    assert transcript.text == "Hello world."
    assert transcript.language == "en"
    assert pauses == []
    [request] = recorder.requests
    assert str(request.url) == f"{URL}/audio/transcriptions"
    assert request.headers["authorization"] == "Bearer k-1"
    assert form(request) == {
        "model": ["tiny.en"],
        "prompt": ["Hi"],
        "language": ["en"],
        "response_format": ["json"],
    }
    assert asr.multilingual is False  # a .en model


def test_upload_is_16khz_pcm16_wav() -> None:
    data = wav_bytes(ONE_SECOND, 16_000)
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (1, 2, 16_000, 16_000)


def test_logprobs_ask_for_json_include_and_come_back_as_tokens() -> None:
    answer = {
        "text": "Hi there",
        "logprobs": [
            {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
            {"token": " there", "logprob": -0.5, "bytes": list(b" there")},
        ],
    }
    recorder = Recorder(httpx.Response(200, json=answer))
    asr, _ = transcriber(recorder, model="tiny.en")
    transcript = asr.transcribe(ONE_SECOND, TranscribeOptions(logprobs=True))
    fields = form(recorder.requests[0])
    assert fields["response_format"] == ["json"]
    assert fields["include[]"] == ["logprobs"]
    assert [(t.text, t.logprob, t.utf8) for t in transcript.tokens] == [
        ("Hi", -0.1, b"Hi"),
        (" there", -0.5, b" there"),
    ]
    [segment] = transcript.segments
    assert (segment.start_s, segment.end_s) == (0.0, 1.0)


def test_timestamps_ask_for_verbose_json_and_words_fall_into_their_segments() -> None:
    answer = {
        "task": "transcribe",
        "language": "spanish",
        "duration": 1.0,
        "text": "Hola amigo. Qué tal",
        "segments": [
            {"id": 0, "start": 0.0, "end": 0.5, "text": " Hola amigo.", "tokens": [1, 2], "avg_logprob": -0.2},
            {"id": 1, "start": 0.5, "end": 1.0, "text": " Qué tal", "tokens": [3], "no_speech_prob": 0.01},
        ],
        "words": [
            {"word": "Hola", "start": 0.0, "end": 0.2},
            {"word": "amigo.", "start": 0.2, "end": 0.48},
            {"word": "Qué", "start": 0.47, "end": 0.7},
            {"word": "tal", "start": 0.7, "end": 1.0},
        ],
    }
    recorder = Recorder(httpx.Response(200, json=answer))
    asr, _ = transcriber(recorder)
    transcript = asr.transcribe(ONE_SECOND, TranscribeOptions(timestamps=True, word_timestamps=True))
    fields = form(recorder.requests[0])
    assert fields["response_format"] == ["verbose_json"]
    assert fields["timestamp_granularities[]"] == ["segment", "word"]
    assert transcript.language == "es"
    first, second = transcript.segments
    assert (first.text, first.token_ids, first.avg_logprob, first.no_speech_prob) == ("Hola amigo.", (1, 2), -0.2, None)
    assert [w.word for w in first.words] == ["Hola", "amigo."]
    assert [w.word for w in second.words] == ["Qué", "tal"]  # 0.47 starts within the slack of 0.5
    assert second.no_speech_prob == 0.01


def test_a_multilingual_model_asks_for_the_language_it_detects() -> None:
    recorder = Recorder(httpx.Response(200, json={"text": "Bonjour", "language": "fr", "segments": []}))
    asr, _ = transcriber(recorder, model="whisper-1")
    assert asr.multilingual
    transcript = asr.transcribe(ONE_SECOND, TranscribeOptions())
    assert form(recorder.requests[0])["response_format"] == ["verbose_json"]
    assert transcript.language is None  # "fr" is not among this test's codes, and is not guessed


def test_translate_goes_to_translations() -> None:
    recorder = Recorder(httpx.Response(200, json={"text": "Hello"}))
    asr, _ = transcriber(recorder)
    transcript = asr.transcribe(ONE_SECOND, TranscribeOptions(task="translate", language="es"))
    assert str(recorder.requests[0].url) == f"{URL}/audio/translations"
    assert "language" not in form(recorder.requests[0])
    assert transcript.language == "en"


def test_a_500_then_success_is_retried() -> None:
    recorder = Recorder(
        httpx.Response(500, json={"error": {"message": "boom"}}),
        httpx.Response(503, text="busy"),
        httpx.Response(200, json={"text": "ok"}),
    )
    asr, pauses = transcriber(recorder)
    assert asr.transcribe(ONE_SECOND, TranscribeOptions(language="en")).text == "ok"
    assert len(recorder.requests) == 3
    assert pauses == retry_pauses(2) == [0.05, 0.2]
    assert form(recorder.requests[2]) == form(recorder.requests[0])  # the same upload again
    assert len(recorder.requests[2].read()) == len(recorder.requests[0].read())


def test_a_5xx_past_the_retries_is_an_engine_error_with_the_servers_message() -> None:
    recorder = Recorder(httpx.Response(500, json={"error": {"message": "model crashed"}}))
    asr, pauses = transcriber(recorder, retries=1)
    with pytest.raises(EngineError) as caught:
        asr.transcribe(ONE_SECOND, TranscribeOptions())
    assert caught.value.code == "asr_http_500"
    assert "model crashed" in caught.value.message
    assert len(recorder.requests) == 2
    assert pauses == [0.05]


def test_a_400_is_not_retried() -> None:
    recorder = Recorder(httpx.Response(400, json={"error": {"message": "Invalid model 'x'"}}))
    asr, _ = transcriber(recorder)
    with pytest.raises(EngineError) as caught:
        asr.transcribe(ONE_SECOND, TranscribeOptions())
    assert caught.value.code == "asr_http_400"
    assert len(recorder.requests) == 1


def test_connection_refused_is_retried_then_unavailable() -> None:
    recorder = Recorder(httpx.ConnectError("[Errno 111] Connection refused"))
    asr, pauses = transcriber(recorder)
    with pytest.raises(EngineError) as caught:
        asr.transcribe(ONE_SECOND, TranscribeOptions())
    assert caught.value.code == "asr_unavailable"
    assert "Connection refused" in caught.value.message
    assert len(recorder.requests) == 3
    assert len(pauses) == 2


def test_a_refused_connection_then_success() -> None:
    recorder = Recorder(httpx.ConnectError("refused"), httpx.Response(200, json={"text": "back"}))
    asr, _ = transcriber(recorder)
    assert asr.transcribe(ONE_SECOND, TranscribeOptions()).text == "back"


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadError("[Errno 104] Connection reset by peer"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
def test_a_connection_dropped_before_the_answer_is_retried(error: Exception) -> None:
    recorder = Recorder(error, httpx.Response(200, json={"text": "again"}))
    asr, pauses = transcriber(recorder)
    assert asr.transcribe(ONE_SECOND, TranscribeOptions()).text == "again"
    assert pauses == [0.05]


@pytest.mark.parametrize("error", [httpx.ConnectTimeout("timed out"), httpx.PoolTimeout("no free connection")])
def test_a_connect_timeout_is_not_retried(error: Exception) -> None:
    recorder = Recorder(error)
    asr, pauses = transcriber(recorder)
    with pytest.raises(EngineError) as caught:
        asr.transcribe(ONE_SECOND, TranscribeOptions())
    assert caught.value.code == "asr_unavailable"
    assert (len(recorder.requests), pauses) == (1, [])


def test_a_read_timeout_is_not_retried() -> None:
    recorder = Recorder(httpx.ReadTimeout("timed out"))
    asr, pauses = transcriber(recorder)
    with pytest.raises(EngineError) as caught:
        asr.transcribe(ONE_SECOND, TranscribeOptions())
    assert caught.value.code == "asr_unavailable"
    assert "ReadTimeout" in caught.value.message or "timed out" in caught.value.message
    assert len(recorder.requests) == 1
    assert pauses == []


@pytest.mark.parametrize(
    ("answer", "what"),
    [
        (httpx.Response(200, text="not json"), "not JSON"),
        (httpx.Response(200, json={"txt": "x"}), "without a 'text'"),
        (httpx.Response(200, json={"text": "x", "segments": [{"start": "a"}]}), "malformed"),
    ],
)
def test_a_body_that_is_not_a_transcription_is_a_bad_response(answer: httpx.Response, what: str) -> None:
    asr, _ = transcriber(Recorder(answer))
    with pytest.raises(EngineError) as caught:
        asr.transcribe(ONE_SECOND, TranscribeOptions(language="en"))
    assert caught.value.code == "asr_bad_response"
    assert what in caught.value.message


def test_empty_audio_sends_nothing() -> None:
    recorder = Recorder(httpx.Response(500))
    asr, _ = transcriber(recorder)
    assert asr.transcribe(np.zeros(0, dtype=np.float32), TranscribeOptions()).text == ""
    assert recorder.requests == []
