"""espeak-ng in process: languages, sentence chunks, stop, thread safety, and intelligible English."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from openrealtime.engines.espeak_tts import ESPEAK_SAMPLE_RATE_HZ, EspeakOptions, EspeakSynthesizer
from openrealtime.exceptions import EngineError
from tests.engines.transcribe_back import transcribe

pytestmark = pytest.mark.real

THREE_SENTENCES = "The weather is nice today. Let us go for a walk! Shall we take the dog?"


@pytest.fixture(scope="module")
def espeak() -> EspeakSynthesizer:
    return EspeakSynthesizer()


def speak(engine: EspeakSynthesizer, text: str, voice: str = "en-us") -> list[np.ndarray]:
    return list(engine.synthesize(text, voice=voice, stop=threading.Event()))


def test_lists_languages_and_resolves_voices(espeak: EspeakSynthesizer) -> None:
    voices = espeak.voices()
    assert {"en-us", "es", "fr", "de", "pt-br", "ca", "eo"} <= set(voices)
    assert list(voices) == sorted(voices)
    assert espeak.resolve_language("ES") == "es"
    assert espeak.resolve_language("pt_BR") == "pt-br"
    assert espeak.resolve_language("es-AR") == "es"  # unknown region: the base language
    assert espeak.resolve_language("alloy") == "en-us"  # OpenAI voice names speak the default


def test_one_float32_chunk_per_sentence(espeak: EspeakSynthesizer) -> None:
    chunks = speak(espeak, THREE_SENTENCES)
    assert espeak.sample_rate_hz == ESPEAK_SAMPLE_RATE_HZ == 22_050
    assert len(chunks) == 3
    for chunk in chunks:
        assert chunk.dtype == np.float32
        assert chunk.ndim == 1
        assert 0.3 * ESPEAK_SAMPLE_RATE_HZ < chunk.size < 5 * ESPEAK_SAMPLE_RATE_HZ
        assert 0.05 < float(np.max(np.abs(chunk))) <= 1.0


def test_english_is_intelligible(espeak: EspeakSynthesizer) -> None:
    audio = np.concatenate(speak(espeak, THREE_SENTENCES))
    heard = transcribe(audio, espeak.sample_rate_hz).split()
    # espeak is robotic: Whisper tiny.en hears "whenever" for "weather", so ask for most words.
    words = ("weather", "nice", "today", "walk", "take", "dog")
    assert sum(word in heard for word in words) >= len(words) - 1, heard


def test_languages_sound_different(espeak: EspeakSynthesizer) -> None:
    text = "Buenos días, ¿cómo estás?"
    spanish = np.concatenate(speak(espeak, text, "es"))
    english = np.concatenate(speak(espeak, text, "en-us"))
    french = np.concatenate(speak(espeak, text, "fr"))
    assert spanish.size != english.size
    assert french.size != spanish.size


def test_stop_before_and_between_sentences(espeak: EspeakSynthesizer) -> None:
    stop = threading.Event()
    stop.set()
    assert list(espeak.synthesize(THREE_SENTENCES, voice="en-us", stop=stop)) == []
    stop = threading.Event()
    received = []
    for chunk in espeak.synthesize(THREE_SENTENCES, voice="en-us", stop=stop):
        received.append(chunk)
        stop.set()
    assert len(received) == 1


def test_empty_text_yields_nothing(espeak: EspeakSynthesizer) -> None:
    assert speak(espeak, "   ") == []


def test_threads_get_the_same_audio_as_one_thread(espeak: EspeakSynthesizer) -> None:
    # espeak's output varies by a few samples from run to run (its voicing noise), so a mix-up
    # between threads shows as a length off by far more than that, or as a wrong language.
    jobs = [("Hello from the first thread.", "en-us"), ("Hola, esto es el segundo hilo de prueba.", "es")] * 4
    expected = [np.concatenate(speak(espeak, text, voice)).size for text, voice in jobs[:2]] * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: np.concatenate(speak(espeak, *job)).size, jobs))
    for got, want in zip(results, expected, strict=True):
        assert abs(got - want) < 0.01 * want


def test_options_change_the_rate(espeak: EspeakSynthesizer) -> None:
    slow = EspeakSynthesizer(EspeakOptions(rate_wpm=120))
    normal = np.concatenate(speak(espeak, THREE_SENTENCES)).size
    assert np.concatenate(speak(slow, THREE_SENTENCES)).size > 1.2 * normal


@pytest.mark.parametrize("speed", [0.5, 1.5])
def test_speed_scales_the_duration_per_call(espeak: EspeakSynthesizer, speed: float) -> None:
    normal = np.concatenate(speak(espeak, THREE_SENTENCES)).size
    changed = np.concatenate(
        list(espeak.synthesize(THREE_SENTENCES, voice="en-us", stop=threading.Event(), speed=speed))
    ).size
    # The pauses between sentences scale less than the words (measured: x1.84 at 0.5, x0.73 at 1.5).
    assert changed / normal == pytest.approx(1 / speed, rel=0.2)


def test_speaks_only_the_languages_it_knows(espeak: EspeakSynthesizer) -> None:
    assert espeak.speaks("es")
    assert espeak.speaks("pt-BR")
    assert espeak.speaks("es-AR")  # its base language
    assert espeak.speaks("en")
    assert not espeak.speaks("xx")  # it would read it with its default English voice


def test_unknown_default_language_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="klingon"):
        EspeakSynthesizer(EspeakOptions(default_language="klingon"))
