"""Piper with the registry-shipped Joe voice: voice names, sentences streamed in pieces, stop, threads, and
words."""

from __future__ import annotations

import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from openrealtime.engines import piper_tts
from openrealtime.engines.model_files import joe_voice
from openrealtime.engines.piper_tts import (
    CONTEXT_FRAMES,
    FIRST_PIECE_FRAMES,
    MAX_PIECE_FRAMES,
    MIN_PIECE_FRAMES,
    OPENAI_VOICES,
    PiperOptions,
    PiperSynthesizer,
)
from openrealtime.exceptions import EngineError
from tests.engines.transcribe_back import transcribe

pytestmark = pytest.mark.real

JOE = "en_US-joe-medium"
TWO_SENTENCES = "The quick brown fox jumps over the lazy dog. Please call me back tomorrow morning."
SENTENCES = (
    "Good evening, how can I help?",
    "The museum opens at nine and closes early on Sundays.",
    "Sure!",
    "Take the second street on the left after the bridge.",
    "I would like to book a table for two people tonight.",
    "Thank you very much for your help with the move.",
)


@pytest.fixture(scope="module")
def piper() -> PiperSynthesizer:
    return PiperSynthesizer()


def speak(engine: PiperSynthesizer, text: str, voice: str = "alloy") -> list[np.ndarray]:
    return list(engine.synthesize(text, voice=voice, stop=threading.Event()))


def test_voice_names_map_onto_joe(piper: PiperSynthesizer) -> None:
    assert piper.sample_rate_hz == 22_050
    assert piper.voices() == (JOE, *OPENAI_VOICES)
    assert set(OPENAI_VOICES) == {
        "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"
    }  # fmt: skip
    for name in (*OPENAI_VOICES, JOE, "ALLOY", "no-such-voice", ""):
        assert piper.resolve_voice(name) == JOE


def test_sentences_stream_in_pieces_the_first_short_and_the_words_are_heard(piper: PiperSynthesizer) -> None:
    chunks = speak(piper, TWO_SENTENCES)
    hop = 256  # joe-medium's samples per latent frame
    assert chunks[0].size == FIRST_PIECE_FRAMES * hop  # the first sound leaves after ~280 ms of it is made
    assert len(chunks) >= 4  # each sentence in pieces
    for chunk in chunks:
        assert chunk.dtype == np.float32
        assert chunk.ndim == 1
    peak = float(np.max(np.abs(np.concatenate(chunks))))
    assert 0.3 < peak < 0.999  # the voice's calibrated gain, not piper's peak per sentence
    heard = transcribe(np.concatenate(chunks), piper.sample_rate_hz)
    for word in ("quick", "brown", "fox", "lazy", "dog", "call", "tomorrow", "morning"):
        assert word in heard, heard


def test_one_gain_for_the_voice_with_headroom(piper: PiperSynthesizer) -> None:
    """Sentences keep their relative loudness (no peak normalization per sentence) and never clip."""
    peaks = [float(np.max(np.abs(np.concatenate(speak(piper, text))))) for text in SENTENCES]
    assert 0.4 < float(np.median(peaks)) < 0.85
    assert max(peaks) < 0.999
    assert max(peaks) / min(peaks) > 1.05  # each sentence's own level, not all at one peak


def test_the_pieces_join_into_exactly_one_whole_decode(piper: PiperSynthesizer) -> None:
    split, voice = piper._split[0], piper._voices[0]
    assert split is not None
    ids = voice.phonemes_to_ids(voice.phonemize("The quick brown fox jumps over the lazy dog.")[0])
    frames = split.frames(piper_tts._graph_inputs(voice, ids, None))
    whole = split.decode(frames, 0, frames.shape[2])
    pieces = np.concatenate([split.decode(frames, a, b) for a, b in piper_tts._pieces(frames.shape[2])])
    assert pieces.size == whole.size == frames.shape[2] * 256
    np.testing.assert_allclose(pieces, whole, atol=1e-5)
    # The check can fail: with too little context the joins differ.
    short = np.concatenate([split.decode(frames, a, b, context=CONTEXT_FRAMES - 4) for a, b in ((0, 24), (24, 60))])
    assert np.max(np.abs(short - whole[: short.size])) > 1e-4


@pytest.mark.parametrize("count", [1, 10, 24, 30, 36, 37, 100, 152, 153, 400])
def test_pieces_cover_the_frames_the_first_short_none_tiny(count: int) -> None:
    pieces = list(piper_tts._pieces(count))
    assert pieces[0][0] == 0
    assert pieces[-1][1] == count
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert pieces[0][1] <= FIRST_PIECE_FRAMES + MIN_PIECE_FRAMES
    assert all(MIN_PIECE_FRAMES < b - a <= MAX_PIECE_FRAMES + MIN_PIECE_FRAMES for a, b in pieces[1:])


def test_a_graph_without_the_decoder_node_is_run_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(piper_tts, "DECODER_INPUT_NODE", "/no/such/Node")
    whole = PiperSynthesizer()
    assert whole._split == [None]
    chunks = speak(whole, TWO_SENTENCES)
    assert len(chunks) == 2  # piper's way: one chunk a sentence, each at its own full scale
    assert all(float(np.max(np.abs(chunk))) == pytest.approx(1.0, abs=1e-3) for chunk in chunks)


def test_stop_is_checked_between_sentences(piper: PiperSynthesizer) -> None:
    stop = threading.Event()
    stop.set()
    assert list(piper.synthesize(TWO_SENTENCES, voice="ash", stop=stop)) == []
    stop = threading.Event()
    received = []
    for chunk in piper.synthesize(TWO_SENTENCES, voice="ash", stop=stop):
        received.append(chunk)
        stop.set()
    assert len(received) == 1


def test_empty_text_yields_nothing(piper: PiperSynthesizer) -> None:
    assert speak(piper, "  \n") == []


def test_concurrent_sessions_share_one_instance(piper: PiperSynthesizer) -> None:
    texts = ["Hello there.", "Good evening.", "See you soon.", "Thank you very much."]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda text: speak(piper, text), texts))
    for chunks in results:
        assert np.concatenate(chunks).size > 0.3 * piper.sample_rate_hz


def test_length_scale_slows_speech() -> None:
    slow = PiperSynthesizer(PiperOptions(length_scale=1.5, noise_w_scale=0.0))
    fast = PiperSynthesizer(PiperOptions(length_scale=0.8, noise_w_scale=0.0))
    text = "This sentence has a fixed number of words."
    assert np.concatenate(speak(slow, text)).size > 1.5 * np.concatenate(speak(fast, text)).size


@pytest.mark.parametrize("speed", [0.5, 1.5])
def test_speed_scales_the_duration_per_call(speed: float) -> None:
    # Without phoneme-duration noise the durations are repeatable; the pauses around the words
    # scale less than the words (measured: x1.74 at 0.5, x0.72 at 1.5).
    steady = PiperSynthesizer(PiperOptions(noise_w_scale=0.0))
    text = "This sentence has a fixed number of words."
    normal = np.concatenate(speak(steady, text)).size
    changed = np.concatenate(list(steady.synthesize(text, voice="alloy", stop=threading.Event(), speed=speed))).size
    assert changed / normal == pytest.approx(1 / speed, rel=0.2)


def test_speaks_the_language_of_its_voices(piper: PiperSynthesizer) -> None:
    assert piper.speaks("en")
    assert piper.speaks("en-GB")
    assert not piper.speaks("es")


def test_a_missing_voice_file_is_an_engine_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="cannot load piper voice"):
        PiperSynthesizer(PiperOptions(model_paths=(tmp_path / "nobody.onnx",)))


def test_openai_names_are_dealt_round_robin_over_voices_and_speakers(tmp_path: Path) -> None:
    model, config = joe_voice()
    (tmp_path / "second.onnx").symlink_to(model)
    (tmp_path / "second.onnx.json").symlink_to(config)
    multi = json.loads(config.read_text())
    multi.update(num_speakers=2, speaker_id_map={"anna": 0, "bob": 1})
    (tmp_path / "duo.onnx").symlink_to(model)
    (tmp_path / "duo.onnx.json").write_text(json.dumps(multi))
    engine = PiperSynthesizer(PiperOptions(model_paths=(model, tmp_path / "second.onnx", tmp_path / "duo.onnx")))
    slots = (JOE, "second", "duo:anna", "duo:bob")
    assert engine.voices() == (*slots, *OPENAI_VOICES)
    for i, name in enumerate(OPENAI_VOICES):
        assert engine.resolve_voice(name) == slots[i % len(slots)]
    assert engine.resolve_voice("second") == "second"
    assert engine.resolve_voice("unknown") == JOE
    assert np.concatenate(speak(engine, "Hello.", voice="ash")).size > 0.3 * engine.sample_rate_hz  # the second
    assert np.concatenate(speak(engine, "Hello.", voice="duo:bob")).size > 0.3 * engine.sample_rate_hz  # a speaker
