"""OpenAI's audio REST endpoints with the real models, driven by the official SDK over loopback HTTP."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
from openai import AsyncOpenAI

import openrealtime
from openrealtime.bench.speech import normalize, word_error_rate
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.media import OUTPUT_RATE_HZ, SpeechEncoder, SpeechFormat, decode_upload
from openrealtime.server.settings import Settings
from tests.engines.transcribe_back import transcribe

pytestmark = pytest.mark.real

SAMPLES = Path(openrealtime.__file__).parent / "samples"
DEMO_WAV = (SAMPLES / "demo.wav").read_bytes()
DEMO_TEXT = (SAMPLES / "demo.txt").read_text().strip()
MAX_WER = 0.1
MAX_UPLOAD_BYTES = 400_000  # the demo (283 kB) fits; a larger body is refused
SPOKEN = "Please call me tomorrow morning about the report. The weather will be sunny and warm all week."
# piper speaks with random noise and tiny.en hears it back: a word in ten may differ (the same
# sentence comes back as "lazy dog", "lazy tug" or "lazy" from one run to the next).
MAX_SPEECH_WER = 0.1
# Twice the speed, heard back by greedy tiny.en: piper's synthesis is random (its noise), and one fresh-clone CI
# run heard "...the report though whether it will be..." (3 of 17 words). Garbled or silent speech is far above.
MAX_FAST_SPEECH_WER = 0.25
TIMESTAMP = re.compile(r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d) --> (\d\d):(\d\d):(\d\d)[,.](\d\d\d)")


@pytest.fixture
async def client(real_engines: EngineSet) -> AsyncIterator[AsyncOpenAI]:
    settings = Settings(port=0, api_key="sk-audio-test", max_upload_bytes=MAX_UPLOAD_BYTES)
    async with running_server(settings, engines=real_engines) as url:
        base = url.replace("ws://", "http://") + "/v1"
        async with AsyncOpenAI(api_key="sk-audio-test", base_url=base, max_retries=0) as sdk:
            yield sdk


def encode_wav(samples: np.ndarray, rate_hz: int) -> bytes:
    encoder = SpeechEncoder(SpeechFormat.WAV, rate_hz)  # 24 kHz, with a streaming header
    return encoder.encode(samples) + encoder.finish()


def cue_texts(subtitles: str) -> tuple[list[str], list[tuple[float, float]]]:
    """The text lines and (start, end) seconds of each SRT or VTT cue."""
    texts: list[str] = []
    times: list[tuple[float, float]] = []
    for block in subtitles.strip().split("\n\n"):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            match = TIMESTAMP.search(line)
            if match:
                h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups())
                times.append((h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000))
                texts.append(" ".join(lines[i + 1 :]))
    return texts, times


async def test_every_response_format_gives_the_words(client: AsyncOpenAI) -> None:
    upload = ("demo.wav", DEMO_WAV, "audio/wav")
    as_json = await client.audio.transcriptions.create(file=upload, model="gpt-4o-transcribe")
    assert word_error_rate([DEMO_TEXT], [as_json.text]) <= MAX_WER
    assert as_json.usage is not None
    assert as_json.usage.type == "duration"
    assert as_json.usage.seconds == 9

    text = await client.audio.transcriptions.create(file=upload, model="whisper-1", response_format="text")
    assert isinstance(text, str)
    assert word_error_rate([DEMO_TEXT], [text]) <= MAX_WER

    verbose = await client.audio.transcriptions.create(
        file=upload, model="whisper-1", response_format="verbose_json", timestamp_granularities=["segment"]
    )
    assert verbose.language == "english"
    assert verbose.duration == pytest.approx(8.84, abs=0.01)
    assert verbose.segments
    assert word_error_rate([DEMO_TEXT], [verbose.text]) <= MAX_WER
    assert " ".join(s.text for s in verbose.segments) == verbose.text
    starts = [s.start for s in verbose.segments]
    assert starts == sorted(starts)
    assert all(s.start < s.end <= verbose.duration for s in verbose.segments)

    for fmt in ("srt", "vtt"):
        subtitles = await client.audio.transcriptions.create(file=upload, model="whisper-1", response_format=fmt)
        assert isinstance(subtitles, str)
        assert subtitles.startswith("WEBVTT\n\n") if fmt == "vtt" else subtitles.startswith("1\n00:00:00,000 --> ")
        texts, times = cue_texts(subtitles)
        assert word_error_rate([DEMO_TEXT], [" ".join(texts)]) <= MAX_WER
        assert all(start < end <= 8.84 for start, end in times)


async def test_a_stream_gives_deltas_then_done(client: AsyncOpenAI) -> None:
    stream = await client.audio.transcriptions.create(
        file=("demo.wav", DEMO_WAV, "audio/wav"), model="gpt-4o-mini-transcribe", stream=True
    )
    events = [event async for event in stream]
    kinds = [event.type for event in events]
    assert kinds[-1] == "transcript.text.done"
    assert kinds.count("transcript.text.done") == 1
    assert set(kinds[:-1]) == {"transcript.text.delta"}
    assert len(kinds) > 1
    deltas = "".join(e.delta for e in events if e.type == "transcript.text.delta")
    assert deltas == events[-1].text  # type: ignore[union-attr]
    assert word_error_rate([DEMO_TEXT], [deltas]) <= MAX_WER


async def test_other_containers_are_decoded(client: AsyncOpenAI) -> None:
    """The speech endpoint's own mp3, opus and flac, uploaded back to the transcription endpoint."""
    for fmt in ("mp3", "opus", "flac"):
        audio = await client.audio.speech.create(model="tts-1", voice="alloy", input=SPOKEN, response_format=fmt)
        name = f"speech.{'ogg' if fmt == 'opus' else fmt}"
        heard = await client.audio.transcriptions.create(file=(name, audio.content), model="whisper-1")
        assert word_error_rate([SPOKEN], [heard.text]) <= MAX_SPEECH_WER, (fmt, heard.text)


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks translations deprecated
async def test_a_translation_is_english_text(client: AsyncOpenAI) -> None:
    # tiny.en has no translate task: its input can only be English, which it transcribes.
    translation = await client.audio.translations.create(file=("demo.wav", DEMO_WAV), model="whisper-1")
    assert word_error_rate([DEMO_TEXT], [translation.text]) <= MAX_WER


async def test_streamed_speech_transcribes_back_to_its_input(client: AsyncOpenAI) -> None:
    chunks: list[bytes] = []
    async with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="marin", input=SPOKEN, response_format="wav", instructions="Speak calmly."
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        async for chunk in response.iter_bytes():
            chunks.append(chunk)
    audio = decode_upload(b"".join(chunks), rate_hz=OUTPUT_RATE_HZ, max_s=60)
    assert word_error_rate([SPOKEN], [transcribe(audio, OUTPUT_RATE_HZ)]) <= MAX_SPEECH_WER

    pcm = await client.audio.speech.create(model="tts-1", voice="alloy", input=SPOKEN, response_format="pcm", speed=2.0)
    fast = np.frombuffer(pcm.content, dtype="<i2").astype(np.float32) / 32768
    assert word_error_rate([SPOKEN], [transcribe(fast, OUTPUT_RATE_HZ)]) <= MAX_FAST_SPEECH_WER
    assert fast.size < 0.7 * audio.size  # twice the speed: about half as long (the same silences at the ends)


async def test_speech_as_server_sent_events(client: AsyncOpenAI) -> None:
    response = await client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="alloy", input=SPOKEN, response_format="pcm", stream_format="sse"
    )
    events = [json.loads(line[len("data: ") :]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    assert events[-1]["type"] == "speech.audio.done"
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    assert word_error_rate([SPOKEN], [transcribe(audio, OUTPUT_RATE_HZ)]) <= MAX_SPEECH_WER


async def test_bad_uploads_get_openai_errors(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as not_audio:
        await client.audio.transcriptions.create(file=("notes.txt", b"not audio " * 100), model="whisper-1")
    assert not_audio.value.code == "invalid_audio"
    assert not_audio.value.param == "file"

    with pytest.raises(openai.APIStatusError) as too_large:
        await client.audio.transcriptions.create(file=("big.wav", DEMO_WAV * 2), model="whisper-1")
    assert too_large.value.status_code == 413
    assert too_large.value.code == "request_too_large"

    with pytest.raises(openai.BadRequestError) as bad_format:
        await client.audio.transcriptions.create(
            file=("demo.wav", DEMO_WAV), model="whisper-1", response_format="diarized_json"
        )
    assert bad_format.value.param == "response_format"

    with pytest.raises(openai.BadRequestError) as logprobs:  # OpenAI gives logprobs in json only
        await client.audio.transcriptions.create(
            file=("demo.wav", DEMO_WAV), model="whisper-1", response_format="verbose_json", include=["logprobs"]
        )
    assert logprobs.value.code == "invalid_value"
    assert logprobs.value.param == "include"

    with pytest.raises(openai.AuthenticationError):
        await client.with_options(api_key="sk-wrong").audio.transcriptions.create(
            file=("demo.wav", DEMO_WAV), model="whisper-1"
        )


async def test_models_are_listed(client: AsyncOpenAI) -> None:
    ids = [model.id async for model in client.models.list()]
    assert {"gpt-realtime", "whisper-1", "gpt-4o-transcribe", "tts-1", "gpt-4o-mini-tts"} <= set(ids)
    assert (await client.models.retrieve("whisper-1")).owned_by == "openrealtime"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("dall-e-3")


SPANISH = "Buenos días. Me gustaría reservar una mesa para dos personas esta noche."


@pytest.fixture(scope="module")
def multilingual_engines() -> Iterator[EngineSet]:
    """Whisper base (bundled, multilingual) and espeak-ng, which speaks Spanish for it to hear."""
    from openrealtime.engines.espeak_tts import EspeakSynthesizer
    from openrealtime.engines.fake import EnergyVad
    from openrealtime.server.registry import load_transcriber

    transcriber = load_transcriber(Settings(asr_model="base", asr_threads=2))
    engines = EngineSet(
        vad=EnergyVad(), transcriber=transcriber, transcriber_name="base", synthesizers={"*": EspeakSynthesizer()}
    )
    yield engines
    engines.close()


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks translations deprecated
async def test_a_multilingual_model_translates_into_english(multilingual_engines: EngineSet) -> None:
    async with (
        running_server(Settings(port=0), engines=multilingual_engines) as url,
        AsyncOpenAI(api_key="sk-local", base_url=url.replace("ws://", "http://") + "/v1") as client,
    ):
        voice = multilingual_engines.synthesizers["*"]
        chunks = voice.synthesize(SPANISH, voice="es", stop=threading.Event())
        spanish = encode_wav(np.concatenate(list(chunks)), voice.sample_rate_hz)

        heard = await client.audio.transcriptions.create(
            file=("es.wav", spanish), model="whisper-1", response_format="verbose_json"
        )
        assert heard.language == "spanish"  # detected
        assert {"mesa", "noche"} <= set(normalize(heard.text).split())

        english = await client.audio.translations.create(file=("es.wav", spanish), model="whisper-1")
        # Whisper base's translation of espeak's Spanish varies between machines ("Good days, I like
        # to reserve a table for ...", "Good morning, I would like to receive a message for the boss
        # tonight."): English it must be, with some of the sentence's content, and no Spanish left.
        words = set(normalize(english.text).split())
        assert len(words & {"i", "to", "a", "the", "for", "would", "like"}) >= 3, english.text
        assert words & {"good", "morning", "reserve", "table", "tonight", "night", "two"}, english.text
        assert not words & {"mesa", "noche", "quiero", "buenos"}, english.text
