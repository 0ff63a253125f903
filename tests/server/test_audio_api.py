"""OpenAI's audio REST endpoints and /v1/models over fake engines: shapes, limits, errors, auth."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient

from openrealtime.audio.types import Samples
from openrealtime.contracts import TranscribeOptions, Transcript
from openrealtime.engines.fake import EnergyVad, FakeTranscriber, ToneSynthesizer
from openrealtime.exceptions import EngineError
from openrealtime.runtime.engines import EngineSet, audio_windows
from openrealtime.server.app import create_app
from openrealtime.server.embedded import running_server
from openrealtime.server.media import OUTPUT_RATE_HZ, decode_upload
from openrealtime.server.settings import Settings
from openrealtime.server.transcript_formats import LANGUAGE_NAMES
from tests.conftest import TIMEOUT_S, tone

KEY = "sk-test-key"
TONE_MS = 3500  # the fake transcriber hears two words a second of sound, six here
WORDS = "hello world this is a test"


def wav(samples: Samples, rate_hz: int = 24_000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate_hz)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


SPEECH = wav(tone(TONE_MS))


class FailingMidwaySynthesizer(ToneSynthesizer):
    def synthesize(self, text: str, *, voice: str, stop: threading.Event, speed: float = 1.0) -> Iterator[Samples]:
        yield from list(super().synthesize(text, voice=voice, stop=stop, speed=speed))[:2]
        raise EngineError("the voice failed midway", code="tts_failed")


class CrashingSynthesizer(ToneSynthesizer):
    def synthesize(self, text: str, *, voice: str, stop: threading.Event, speed: float = 1.0) -> Iterator[Samples]:
        raise RuntimeError("a bug in a voice")


def engines_with(transcriber: FakeTranscriber | None = None, synthesizer: ToneSynthesizer | None = None) -> EngineSet:
    voice = synthesizer or ToneSynthesizer()
    return EngineSet(
        vad=EnergyVad(),
        transcriber=transcriber or FakeTranscriber(),
        transcriber_name="fake",
        synthesizers={"en": voice, "*": voice},
    )


@pytest.fixture
def engines() -> Iterator[EngineSet]:
    engines = engines_with()
    yield engines
    engines.close()


@pytest.fixture
def client(engines: EngineSet) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), engines=engines)) as client:
        yield client


def transcribe(client: TestClient, data: dict[str, Any], file: bytes = SPEECH, **kwargs: Any) -> httpx.Response:
    return client.post(
        "/v1/audio/transcriptions", files={"file": ("speech.wav", file, "audio/wav")}, data=data, **kwargs
    )


def speak(client: TestClient, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", **body}, **kwargs)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def events(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = response.text.split("\n\n")
    assert blocks[-1] == ""
    assert all(block.startswith("data: ") for block in blocks[:-1])
    return [json.loads(block[len("data: ") :]) for block in blocks[:-1]]


# --- transcriptions and translations ---------------------------------------------------------------


def test_a_transcription_in_each_response_format(client: TestClient) -> None:
    as_json = transcribe(client, {"model": "whisper-1"})
    assert as_json.json() == {"text": WORDS, "usage": {"type": "duration", "seconds": 4}}  # rounded up

    text = transcribe(client, {"model": "gpt-4o-transcribe", "response_format": "text"})
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.text == WORDS + "\n"

    verbose = transcribe(
        client, {"model": "whisper-1", "response_format": "verbose_json", "timestamp_granularities[]": "segment"}
    ).json()
    assert verbose["task"] == "transcribe"
    assert verbose["language"] == "english"
    assert verbose["duration"] == TONE_MS / 1000
    assert verbose["text"] == WORDS
    assert [(s["id"], s["seek"], s["start"], s["end"], s["text"]) for s in verbose["segments"]] == [
        (0, 0, 0.0, 2.0, "hello world this is"),
        (1, 200, 2.0, 3.0, "a test"),
    ]

    srt = transcribe(client, {"model": "whisper-1", "response_format": "srt"})
    assert srt.text == (
        "1\n00:00:00,000 --> 00:00:02,000\nhello world this is\n\n2\n00:00:02,000 --> 00:00:03,000\na test\n"
    )
    vtt = transcribe(client, {"model": "whisper-1", "response_format": "vtt"})
    assert vtt.headers["content-type"] == "text/vtt; charset=utf-8"
    assert vtt.text == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nhello world this is\n\n00:00:02.000 --> 00:00:03.000\na test\n"
    )


def test_a_streamed_transcription_sends_deltas_then_done(client: TestClient) -> None:
    response = transcribe(client, {"model": "gpt-4o-mini-transcribe", "stream": "true"})
    assert events(response) == [
        {"type": "transcript.text.delta", "delta": "hello world this is"},
        {"type": "transcript.text.delta", "delta": " a test"},
        {"type": "transcript.text.done", "text": WORDS},
    ]


def test_long_uploads_stream_one_window_at_a_time(engines: EngineSet, client: TestClient) -> None:
    """63 s of audio is decoded in the engine set's windows, each sent as deltas once decoded and
    prompted with the last words of the one before; the deltas add up to the done text."""
    prompts: list[str | None] = []
    original = engines.transcriber.transcribe

    def transcribe_and_record(audio: Samples, options: TranscribeOptions) -> Transcript:
        prompts.append(options.prompt)
        return original(audio, options)

    engines.transcriber.transcribe = transcribe_and_record  # type: ignore[method-assign]
    audio = np.concatenate([tone(20_000), np.zeros(24_000, dtype=np.float32)] * 3)
    sent = events(transcribe(client, {"model": "whisper-1", "stream": "true", "prompt": "Tones."}, file=wav(audio)))
    windows = audio_windows(decode_upload(wav(audio), rate_hz=16_000, max_s=100), 16_000)
    assert len(prompts) == len(windows) == 3
    assert prompts[0] == "Tones."
    assert prompts[1] == "Tones. hello world this is a test of live captions"  # the fake's script, all heard
    assert [e["type"] for e in sent] == ["transcript.text.delta"] * 3 * 3 + ["transcript.text.done"]
    assert sent[-1]["text"] == "".join(e.get("delta", "") for e in sent)


def test_word_timestamps_give_words_and_segments_only_when_asked(engines: EngineSet, client: TestClient) -> None:
    asked: list[TranscribeOptions] = []
    original = engines.transcriber.transcribe

    def transcribe_and_record(audio: Samples, options: TranscribeOptions) -> Transcript:
        asked.append(options)
        return original(audio, options)

    engines.transcriber.transcribe = transcribe_and_record  # type: ignore[method-assign]
    verbose = {"model": "whisper-1", "response_format": "verbose_json"}
    plain = transcribe(client, verbose).json()
    assert "words" not in plain
    assert not asked[-1].word_timestamps  # the default decode costs nothing more
    assert not asked[-1].logprobs
    [first, _] = plain["segments"]
    assert first["tokens"] == [1000, 1000, 1001, 1001, 1002, 1003]  # the fake's ids: one per word (two tokens)
    assert first["avg_logprob"] < 0
    assert first["no_speech_prob"] == 0.0

    words_only = transcribe(client, {**verbose, "timestamp_granularities[]": "word"}).json()
    assert asked[-1].word_timestamps
    assert "segments" not in words_only  # as OpenAI answers ["word"] alone
    assert words_only["words"] == [
        {"word": word, "start": i * 0.5, "end": (i + 1) * 0.5} for i, word in enumerate(WORDS.split())
    ]
    both = transcribe(client, {**verbose, "timestamp_granularities[]": ["word", "segment"]}).json()
    assert list(both) == ["task", "language", "duration", "text", "words", "segments", "usage"]
    assert both["words"] == words_only["words"]
    assert both["segments"] == plain["segments"]


def test_include_logprobs_gives_the_texts_logprobs(engines: EngineSet, client: TestClient) -> None:
    body = transcribe(client, {"model": "gpt-4o-transcribe", "include[]": "logprobs"}).json()
    assert list(body) == ["text", "logprobs", "usage"]
    assert "".join(e["token"] for e in body["logprobs"]) == body["text"] == WORDS
    assert body["logprobs"][:2] == [
        {"token": "hell", "logprob": -0.125, "bytes": list(b"hell")},
        {"token": "o", "logprob": -0.25, "bytes": list(b"o")},
    ]
    assert all(e["logprob"] <= 0 and bytes(e["bytes"]) == e["token"].encode() for e in body["logprobs"])


def test_a_streamed_transcription_with_logprobs_sends_them_on_each_delta_and_done(client: TestClient) -> None:
    sent = events(transcribe(client, {"model": "gpt-4o-mini-transcribe", "stream": "true", "include[]": "logprobs"}))
    *deltas, done = sent
    assert [d["delta"] for d in deltas] == ["hello world this is", " a test"]
    for delta in deltas:
        assert "".join(e["token"] for e in delta["logprobs"]) == delta["delta"]
    assert done["type"] == "transcript.text.done"
    assert done["text"] == WORDS
    assert done["logprobs"] == [e for d in deltas for e in d["logprobs"]]


def test_a_translation_uses_whispers_translate_task(engines: EngineSet, client: TestClient) -> None:
    seen: list[str] = []
    original = engines.transcriber.transcribe

    def transcribe_and_record(audio: Samples, options: TranscribeOptions) -> Transcript:
        seen.append(options.task)
        return original(audio, options)

    engines.transcriber.transcribe = transcribe_and_record  # type: ignore[method-assign]
    response = client.post(
        "/v1/audio/translations",
        files={"file": ("speech.wav", SPEECH)},
        data={"model": "whisper-1", "response_format": "verbose_json"},
    )
    assert response.json()["task"] == "translate"
    assert response.json()["language"] == "english"
    assert seen == ["translate"]
    refused = client.post(
        "/v1/audio/translations", files={"file": ("a.wav", SPEECH)}, data={"model": "whisper-1", "language": "de"}
    )
    assert error_of(refused)["code"] == "unknown_parameter"


@pytest.mark.parametrize(
    ("data", "param", "code"),
    [
        ({}, "model", "missing_required_parameter"),
        ({"model": "dall-e-3"}, "model", "model_not_found"),
        ({"model": "whisper-1", "foo": "1"}, "foo", "unknown_parameter"),
        ({"model": "whisper-1", "keywords[]": "openrealtime"}, "keywords", "unsupported_parameter"),
        ({"model": "whisper-1", "include[]": "logprobs", "response_format": "text"}, "include", "invalid_value"),
        ({"model": "whisper-1", "include[]": "tokens"}, "include", "invalid_value"),
        ({"model": "whisper-1", "chunking_strategy[type]": "server_vad"}, "chunking_strategy", "unsupported_value"),
        ({"model": "whisper-1", "response_format": "diarized_json"}, "response_format", "invalid_value"),
        ({"model": "whisper-1", "language": "de"}, "language", "unsupported_value"),
        ({"model": "whisper-1", "language": "english"}, "language", "invalid_value"),
        ({"model": "whisper-1", "temperature": "1.5"}, "temperature", "invalid_value"),
        ({"model": "whisper-1", "temperature": "warm"}, "temperature", "invalid_value"),
        ({"model": "whisper-1", "stream": "maybe"}, "stream", "invalid_value"),
        ({"model": "whisper-1", "stream": "true", "response_format": "srt"}, "stream", "invalid_value"),
        ({"model": ["whisper-1", "whisper-1"]}, "model", "invalid_value"),
        ({"model": "whisper-1", "timestamp_granularities[]": "word"}, "timestamp_granularities", "invalid_value"),
        (
            {"model": "whisper-1", "response_format": "verbose_json", "timestamp_granularities[]": "sentence"},
            "timestamp_granularities",
            "invalid_value",
        ),
    ],
)
def test_bad_fields_are_refused_by_name(client: TestClient, data: dict[str, Any], param: str, code: str) -> None:
    response = transcribe(client, data)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_accepted_fields_that_change_nothing_here(client: TestClient) -> None:
    data = {"model": "whisper-1", "temperature": "0.2", "chunking_strategy": "auto", "language": "EN", "prompt": "Hi."}
    assert transcribe(client, data).json()["text"] == WORDS


def test_bad_uploads_get_openai_errors(client: TestClient) -> None:
    not_audio = transcribe(client, {"model": "whisper-1"}, file=b"%PDF-1.4 not audio at all" * 40)
    assert not_audio.status_code == 400
    assert error_of(not_audio)["code"] == "invalid_audio"
    assert error_of(not_audio)["param"] == "file"

    no_file = client.post("/v1/audio/transcriptions", files={"model": (None, "whisper-1")})
    assert error_of(no_file) == {
        "message": "You must provide an audio 'file' in the form.",
        "type": "invalid_request_error",
        "param": "file",
        "code": "missing_required_parameter",
    }

    two_files = client.post(
        "/v1/audio/transcriptions",
        files=[("file", ("a.wav", SPEECH)), ("file", ("b.wav", SPEECH))],
        data={"model": "whisper-1"},
    )
    assert error_of(two_files)["param"] == "file"

    files = {"file": ("a.wav", SPEECH), "cover": ("c.png", b"png")}
    other_file = client.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1"})
    assert error_of(other_file)["code"] == "unknown_parameter"

    as_json = client.post("/v1/audio/transcriptions", json={"model": "whisper-1"})
    assert as_json.status_code == 415
    assert error_of(as_json)["code"] == "unsupported_media_type"

    broken = client.post(
        "/v1/audio/transcriptions",
        content=b"--x\r\nno end",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code == 400
    assert error_of(broken)["code"] == "invalid_multipart"


def test_upload_limits_are_settings(engines: EngineSet) -> None:
    settings = Settings(max_upload_bytes=len(SPEECH) + 1000, max_upload_audio_s=2)
    with TestClient(create_app(settings, engines=engines)) as client:
        too_large = transcribe(client, {"model": "whisper-1"}, file=SPEECH + b"\x00" * 2000)
        assert too_large.status_code == 413
        assert error_of(too_large)["code"] == "request_too_large"
        too_long = transcribe(client, {"model": "whisper-1"})
        assert too_long.status_code == 400
        assert error_of(too_long)["code"] == "audio_too_long"


def test_a_failing_engine_is_a_500_and_the_server_goes_on() -> None:
    engines = engines_with(FakeTranscriber(fail_on_seconds=2.5), CrashingSynthesizer())
    with TestClient(create_app(Settings(), engines=engines)) as client:
        failed = transcribe(client, {"model": "whisper-1"})
        assert failed.status_code == 500
        assert error_of(failed) == {
            "message": "fake transcriber failure",
            "type": "server_error",
            "param": None,
            "code": "transcription_failed",
        }
        streamed = events(transcribe(client, {"model": "whisper-1", "stream": "true"}))
        assert streamed == [{"type": "error", "error": error_of(failed)}]

        crashed = speak(client, {"input": "Hello."})
        assert crashed.status_code == 500
        assert error_of(crashed)["code"] == "internal_error"
        assert "Traceback" not in crashed.text

        short = wav(tone(1500))
        assert transcribe(client, {"model": "whisper-1"}, file=short).json()["text"] == "hello world"
    engines.close()


def test_a_voice_failing_midway_ends_its_stream() -> None:
    engines = engines_with(synthesizer=FailingMidwaySynthesizer())
    with TestClient(create_app(Settings(), engines=engines)) as client:
        sent = events(speak(client, {"input": "Hello there.", "response_format": "pcm", "stream_format": "sse"}))
        assert [e["type"] for e in sent] == ["speech.audio.delta", "speech.audio.delta", "error"]
        assert sent[-1]["error"] == {
            "message": "the voice failed midway",
            "type": "server_error",
            "param": None,
            "code": "tts_failed",
        }
    engines.close()


async def test_a_voice_failing_midway_cuts_its_audio_short() -> None:
    """Plain audio has sent its status already: the connection closes before the body's end, so the
    client sees an error rather than a file that merely stops."""
    engines = engines_with(synthesizer=FailingMidwaySynthesizer())
    try:
        async with running_server(Settings(port=0), engines=engines) as url:
            body = {"model": "tts-1", "voice": "alloy", "input": "Hello there.", "response_format": "pcm"}
            async with httpx.AsyncClient(base_url=url.replace("ws://", "http://"), timeout=TIMEOUT_S) as http:
                with pytest.raises(httpx.RemoteProtocolError):
                    await http.post("/v1/audio/speech", json=body)
                assert (await http.get("/v1/models")).status_code == 200
    finally:
        await asyncio.to_thread(engines.close)


def test_every_whisper_language_has_a_name() -> None:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    assert set(LANGUAGE_NAMES) == set(_LANGUAGE_CODES)


# --- speech ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "media_type"), [("wav", "audio/wav"), ("mp3", "audio/mpeg"), ("opus", "audio/ogg")])
def test_speech_in_a_container(client: TestClient, fmt: str, media_type: str) -> None:
    response = speak(client, {"input": "Hello there.", "response_format": fmt})
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    audio = decode_upload(response.content, rate_hz=OUTPUT_RATE_HZ, max_s=60)
    expected_s = len("Hello there.") * ToneSynthesizer.ms_per_char / 1000
    assert audio.size / OUTPUT_RATE_HZ == pytest.approx(expected_s, abs=0.06)  # mp3 pads a frame


class RecordingSynthesizer(ToneSynthesizer):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def synthesize(self, text: str, *, voice: str, stop: threading.Event, speed: float = 1.0) -> Iterator[Samples]:
        self.texts.append(text)
        return super().synthesize(text, voice=voice, stop=stop, speed=speed)


def test_long_speech_is_spoken_clause_by_clause() -> None:
    voice = RecordingSynthesizer()
    engines = engines_with(synthesizer=voice)
    text = "Good morning, and welcome to the show. This is the second sentence. And a third one to end with."
    with TestClient(create_app(Settings(), engines=engines)) as client:
        pcm = speak(client, {"input": text, "response_format": "pcm"}).content
    engines.close()
    assert voice.texts == [
        "Good morning, and welcome to the show.",
        "This is the second sentence.",
        "And a third one to end with.",
    ]
    spoken_ms = sum(len(clause) for clause in voice.texts) * ToneSynthesizer.ms_per_char
    assert len(pcm) / 2 / OUTPUT_RATE_HZ == pytest.approx(spoken_ms / 1000, abs=0.01)


def test_speech_speed_is_applied_and_clamped(client: TestClient) -> None:
    def seconds(speed: float) -> float:
        pcm = speak(client, {"input": "Hello there.", "response_format": "pcm", "speed": speed}).content
        return len(pcm) / 2 / OUTPUT_RATE_HZ

    assert seconds(1.0) == pytest.approx(0.72, abs=0.01)
    assert seconds(0.5) == pytest.approx(1.44, abs=0.01)
    assert seconds(4.0) == seconds(2.0) == pytest.approx(0.36, abs=0.01)  # the voices' fastest is 2.0


def test_speech_as_server_sent_events(client: TestClient) -> None:
    response = speak(client, {"input": "Hello there.", "response_format": "pcm", "stream_format": "sse"})
    sent = events(response)
    assert {e["type"] for e in sent[:-1]} == {"speech.audio.delta"}
    assert sent[-1] == {
        "type": "speech.audio.done",
        "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
    }
    pcm = b"".join(base64.b64decode(e["audio"]) for e in sent[:-1])
    assert len(pcm) / 2 / OUTPUT_RATE_HZ == pytest.approx(0.72, abs=0.01)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "eleven-v3"}, "model", "invalid_value"),
        ({"input": ""}, "input", "invalid_value"),
        ({"input": "x" * 4097}, "input", "string_above_max_length"),
        ({"voice": {"id": "voice_123"}}, "voice", "unsupported_value"),
        ({"voice": 7}, "voice", "invalid_value"),
        ({"voice": "darth"}, "voice", "invalid_value"),
        ({"response_format": "ogg"}, "response_format", "invalid_value"),
        ({"speed": 5}, "speed", "invalid_value"),
        ({"speed": True}, "speed", "invalid_value"),
        ({"stream_format": "chunks"}, "stream_format", "invalid_value"),
        ({"instructions": 3}, "instructions", "invalid_value"),
        ({"volume": 2}, "volume", "unknown_parameter"),
        ({"input": None}, "input", "missing_required_parameter"),
    ],
)
def test_bad_speech_requests_are_refused_by_name(
    client: TestClient, body: dict[str, Any], param: str, code: str
) -> None:
    response = speak(client, {"input": "Hello.", **body})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["param"], error["code"]) == (param, code)


def test_speech_bodies_that_are_not_json(client: TestClient) -> None:
    form = client.post("/v1/audio/speech", data={"model": "tts-1", "input": "Hi", "voice": "alloy"})
    assert form.status_code == 415
    broken = client.post("/v1/audio/speech", content=b"{not json", headers={"content-type": "application/json"})
    assert error_of(broken)["code"] == "invalid_json"
    listed = client.post("/v1/audio/speech", json=["tts-1"])
    assert error_of(listed)["code"] == "invalid_json"


def test_instructions_are_accepted(client: TestClient) -> None:
    assert speak(client, {"input": "Hi.", "instructions": "Whisper it.", "response_format": "flac"}).status_code == 200


def test_voices_are_openais_names_and_the_engines_own(client: TestClient) -> None:
    for voice in ("alloy", "nova", "onyx", "cedar", "tone"):  # "tone": the fake voice's own name
        assert speak(client, {"input": "Hi.", "voice": voice, "response_format": "pcm"}).status_code == 200


# --- models, auth, origins, metrics ----------------------------------------------------------------


def test_models_are_listed_in_openais_shape(client: TestClient) -> None:
    listing = client.get("/v1/models").json()
    assert listing["object"] == "list"
    ids = [m["id"] for m in listing["data"]]
    assert {"gpt-realtime", "gpt-realtime-translate", "whisper-1", "fake", "tts-1", "gpt-4o-mini-tts"} <= set(ids)
    assert all(set(m) == {"id", "object", "created", "owned_by"} for m in listing["data"])
    model = client.get("/v1/models/gpt-4o-transcribe").json()
    assert (model["id"], model["object"], model["owned_by"]) == ("gpt-4o-transcribe", "model", "openrealtime")
    missing = client.get("/v1/models/dall-e-3")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "model_not_found"


def test_the_server_key_guards_every_endpoint(engines: EngineSet) -> None:
    with TestClient(create_app(Settings(api_key=KEY), engines=engines)) as client:
        for response in (
            client.get("/v1/models"),
            transcribe(client, {"model": "whisper-1"}),
            speak(client, {"input": "Hi."}, headers={"authorization": "Bearer sk-wrong-key"}),
        ):
            assert response.status_code == 401
            assert error_of(response)["type"] == "invalid_request_error"
        bearer = {"authorization": f"Bearer {KEY}"}
        assert transcribe(client, {"model": "whisper-1"}, headers=bearer).json()["text"] == WORDS
        assert client.get("/v1/models", headers=bearer).status_code == 200


def test_a_foreign_page_is_refused(client: TestClient) -> None:
    refused = transcribe(client, {"model": "whisper-1"}, headers={"origin": "https://evil.example"})
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "origin_not_allowed"


def test_requests_are_counted_in_metrics(client: TestClient) -> None:
    transcribe(client, {"model": "whisper-1"})
    transcribe(client, {"model": "nope"})
    text = client.get("/metrics").text
    assert 'openrealtime_audio_requests_total{endpoint="transcriptions",status="200"} 1' in text
    assert 'openrealtime_audio_requests_total{endpoint="transcriptions",status="400"} 1' in text


class GatedSynthesizer(ToneSynthesizer):
    """Speaks its first chunk, then waits for ``gate`` before the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def synthesize(self, text: str, *, voice: str, stop: threading.Event, speed: float = 1.0) -> Iterator[Samples]:
        for i, chunk in enumerate(super().synthesize(text, voice=voice, stop=stop, speed=speed)):
            if i == 1:
                self.gate.wait(TIMEOUT_S)
            yield chunk


async def test_requests_past_the_limit_get_a_429_while_a_stream_is_served() -> None:
    voice = GatedSynthesizer()
    engines = engines_with(synthesizer=voice)
    try:
        async with running_server(Settings(port=0, max_audio_requests=1), engines=engines) as url:
            base = url.replace("ws://", "http://")
            body = {"model": "tts-1", "voice": "alloy", "input": "Hello there.", "response_format": "pcm"}
            async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT_S) as http:
                async with http.stream("POST", "/v1/audio/speech", json=body) as first:
                    assert first.status_code == 200
                    busy = await http.post("/v1/audio/speech", json=body)
                    assert busy.status_code == 429
                    assert error_of(busy) == {
                        "message": "This server is serving its limit of 1 audio requests; try again shortly.",
                        "type": "requests",
                        "param": None,
                        "code": "rate_limit_exceeded",
                    }
                    assert (await http.get("/v1/models")).status_code == 200  # not an audio request
                    voice.gate.set()
                    audio = await first.aread()
                assert len(audio) / 2 / OUTPUT_RATE_HZ == pytest.approx(0.72, abs=0.01)
                assert (await http.post("/v1/audio/speech", json=body)).status_code == 200
    finally:
        voice.gate.set()
        await asyncio.to_thread(engines.close)


class GatedTranscriber(FakeTranscriber):
    """Holds every decode until ``gate`` is set, counting them."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def transcribe(self, audio: Samples, options: TranscribeOptions) -> Transcript:
        self.gate.wait(TIMEOUT_S)
        return super().transcribe(audio, options)


async def test_a_client_that_goes_away_stops_its_transcription() -> None:
    """A long upload is decoded window by window: once its client has gone, no next window runs."""
    transcriber = GatedTranscriber()
    engines = engines_with(transcriber)
    cancelled = asyncio.Event()
    cancel_job = engines.cancel_job

    def cancel_and_tell(job_id: str) -> None:  # called on the event loop when a request's job ends
        cancelled.set()
        cancel_job(job_id)

    engines.cancel_job = cancel_and_tell  # type: ignore[method-assign]
    audio = wav(np.concatenate([tone(20_000), np.zeros(24_000, dtype=np.float32)] * 3))  # three windows
    files, data = {"file": ("long.wav", audio)}, {"model": "whisper-1"}
    try:
        async with running_server(Settings(port=0), engines=engines) as url:
            async with httpx.AsyncClient(base_url=url.replace("ws://", "http://"), timeout=TIMEOUT_S) as http:
                with pytest.raises(httpx.ReadTimeout):  # the client gives up while the first window decodes
                    await http.post("/v1/audio/transcriptions", files=files, data=data, timeout=0.5)
                await asyncio.wait_for(cancelled.wait(), TIMEOUT_S)
                transcriber.gate.set()
                assert (await http.post("/v1/audio/transcriptions", files=files, data=data)).status_code == 200
                text = (await http.get("/metrics")).text
            assert transcriber.calls == 1 + 3  # one window of the abandoned upload, three of the next
            assert 'openrealtime_audio_requests_total{endpoint="transcriptions",status="499"} 1' in text
    finally:
        transcriber.gate.set()
        await asyncio.to_thread(engines.close)
