"""The stateful resampler: chunking never changes the output, rates and frequencies come out right."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import soxr

from openrealtime.audio.resample import PolyphaseResampler, StreamResampler, quick_resampler
from openrealtime.audio.types import EMPTY

WIRE_HZ = 24_000
ENGINE_HZ = 16_000
G711_HZ = 8_000
EDGE_SAMPLES = 256  # the filter's start-up and flush regions are left out of waveform comparisons
Resampler = type[StreamResampler] | type[PolyphaseResampler]
KINDS = pytest.mark.parametrize("kind", [StreamResampler, PolyphaseResampler])


def sine(freq_hz: float, rate_hz: int, n: int, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq_hz * np.arange(n) / rate_hz)).astype(np.float32)


def one_shot(samples: np.ndarray, in_hz: int, out_hz: int, kind: Resampler = StreamResampler) -> np.ndarray:
    resampler = kind(in_hz, out_hz)
    return np.concatenate([resampler.process(samples), resampler.flush()])


def chunked(
    samples: np.ndarray, in_hz: int, out_hz: int, sizes: list[int], kind: Resampler = StreamResampler
) -> tuple[np.ndarray, list[int]]:
    """Feed ``samples`` in chunks cycling through ``sizes``; returns the output and the chunk edges."""
    resampler = kind(in_hz, out_hz)
    out: list[np.ndarray] = []
    edges: list[int] = []
    start = 0
    for size in itertools.cycle(sizes):
        if start >= samples.size:
            break
        piece = resampler.process(samples[start : start + size])
        assert piece.dtype == np.float32
        out.append(piece)
        start += size
        edges.append(start)
    out.append(resampler.flush())
    return np.concatenate(out), edges


def peak_hz(samples: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate_hz)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("in_hz", "out_hz"), [(WIRE_HZ, ENGINE_HZ), (ENGINE_HZ, WIRE_HZ), (G711_HZ, WIRE_HZ), (WIRE_HZ, G711_HZ)]
)
@pytest.mark.parametrize("sizes", [[1], [7, 480, 13, 240, 3, 1000], [480]])
@KINDS
def test_many_small_chunks_equal_one_shot(in_hz: int, out_hz: int, sizes: list[int], kind: Resampler) -> None:
    rng = np.random.default_rng(7)
    samples = (0.3 * rng.standard_normal(in_hz // 10)).astype(np.float32)  # 100 ms of noise
    whole = one_shot(samples, in_hz, out_hz, kind)
    pieces, _ = chunked(samples, in_hz, out_hz, sizes, kind)
    assert pieces.shape == whole.shape
    np.testing.assert_allclose(pieces, whole, atol=1e-6)


@pytest.mark.parametrize(
    ("n_in", "n_out"), [(24_000, 16_000), (4_800, 3_200), (480, 320), (1_001, 667), (3, 2), (0, 0)]
)
@KINDS
def test_24k_to_16k_length_is_two_thirds(n_in: int, n_out: int, kind: Resampler) -> None:
    assert one_shot(np.zeros(n_in, dtype=np.float32), WIRE_HZ, ENGINE_HZ, kind).size == n_out


@pytest.mark.parametrize(("in_hz", "out_hz"), [(ENGINE_HZ, WIRE_HZ), (G711_HZ, WIRE_HZ), (WIRE_HZ, G711_HZ)])
@KINDS
def test_one_second_in_is_one_second_out(in_hz: int, out_hz: int, kind: Resampler) -> None:
    assert one_shot(np.zeros(in_hz, dtype=np.float32), in_hz, out_hz, kind).size == out_hz


@pytest.mark.parametrize(("in_hz", "out_hz"), [(WIRE_HZ, ENGINE_HZ), (ENGINE_HZ, WIRE_HZ), (G711_HZ, WIRE_HZ)])
@pytest.mark.parametrize("freq_hz", [300.0, 1000.0, 3000.0])
@KINDS
def test_a_sine_keeps_its_frequency(in_hz: int, out_hz: int, freq_hz: float, kind: Resampler) -> None:
    out, _ = chunked(sine(freq_hz, in_hz, in_hz), in_hz, out_hz, [160, 37, 480], kind)
    assert out.size == out_hz
    # One second at out_hz: FFT bins are 1 Hz wide.
    assert peak_hz(out, out_hz) == pytest.approx(freq_hz, abs=1.0)
    rms = float(np.sqrt(np.mean(out[EDGE_SAMPLES:-EDGE_SAMPLES].astype(np.float64) ** 2)))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.01)  # and its level


@KINDS
def test_content_above_the_new_nyquist_is_filtered_not_aliased(kind: Resampler) -> None:
    kept = one_shot(sine(6_000.0, WIRE_HZ, WIRE_HZ), WIRE_HZ, ENGINE_HZ, kind)  # under 16 kHz's 8 kHz Nyquist
    assert peak_hz(kept, ENGINE_HZ) == pytest.approx(6_000.0, abs=1.0)
    aliased = one_shot(sine(10_000.0, WIRE_HZ, WIRE_HZ), WIRE_HZ, ENGINE_HZ, kind)  # would fold to 6 kHz
    assert float(np.max(np.abs(aliased[EDGE_SAMPLES:-EDGE_SAMPLES]))) < 0.01


@KINDS
def test_no_clicks_at_chunk_edges(kind: Resampler) -> None:
    freq_hz = 440.0
    samples = sine(freq_hz, WIRE_HZ, WIRE_HZ)
    out, edges = chunked(samples, WIRE_HZ, ENGINE_HZ, [240, 7, 480, 1, 333], kind)
    ideal = sine(freq_hz, ENGINE_HZ, out.size).astype(np.float64)
    error = np.abs(out - ideal)[EDGE_SAMPLES:-EDGE_SAMPLES]
    assert error.max() < 1e-4  # the stream is delay-compensated: it is the ideal sine, edges included
    # The samples around every input chunk edge, mapped to the output rate, are as good as the rest.
    mapped = [edge * ENGINE_HZ // WIRE_HZ for edge in edges]
    around = np.array([i for i in mapped if EDGE_SAMPLES < i < out.size - EDGE_SAMPLES])
    assert around.size > 100
    neighbourhood = np.concatenate([around - 1, around, around + 1])
    assert np.abs(out[neighbourhood] - ideal[neighbourhood]).max() < 1e-4


def test_the_click_check_catches_a_stateless_per_chunk_resample() -> None:
    """The same check fails for the anti-pattern the stateful resampler replaces."""
    freq_hz = 440.0
    samples = sine(freq_hz, WIRE_HZ, WIRE_HZ)
    naive = np.concatenate(
        [soxr.resample(samples[i : i + 480], WIRE_HZ, ENGINE_HZ) for i in range(0, samples.size, 480)]
    )
    ideal = sine(freq_hz, ENGINE_HZ, naive.size).astype(np.float64)
    assert np.abs(naive - ideal)[EDGE_SAMPLES:-EDGE_SAMPLES].max() > 1e-2


@KINDS
def test_empty_chunks_emit_nothing_and_change_nothing(kind: Resampler) -> None:
    samples = sine(500.0, WIRE_HZ, 4_800)
    resampler = kind(WIRE_HZ, ENGINE_HZ)
    out = []
    for start in range(0, samples.size, 480):
        empty = resampler.process(EMPTY)
        assert empty.size == 0
        assert empty.dtype == np.float32
        out.append(resampler.process(samples[start : start + 480]))
    out.append(resampler.flush())
    np.testing.assert_allclose(np.concatenate(out), one_shot(samples, WIRE_HZ, ENGINE_HZ, kind), atol=1e-6)


@KINDS
def test_the_tail_comes_out_only_on_flush(kind: Resampler) -> None:
    resampler = kind(WIRE_HZ, ENGINE_HZ)
    head = resampler.process(sine(500.0, WIRE_HZ, 4_800))
    assert head.size < 3_200  # the filter holds some samples back ...
    tail = resampler.flush()
    assert head.size + tail.size == 3_200  # ... until the stream ends


@KINDS
def test_output_is_float32_even_for_other_input_dtypes(kind: Resampler) -> None:
    resampler = kind(WIRE_HZ, ENGINE_HZ)
    out = resampler.process(sine(500.0, WIRE_HZ, 2_400).astype(np.float64))
    assert out.dtype == np.float32
    strided = resampler.process(sine(500.0, WIRE_HZ, 4_800)[::2])  # non-contiguous input is accepted
    assert strided.dtype == np.float32


@KINDS
def test_equal_rates_pass_through_untouched(kind: Resampler) -> None:
    samples = sine(500.0, ENGINE_HZ, 1_000)
    resampler = kind(ENGINE_HZ, ENGINE_HZ)
    assert resampler.process(samples) is samples
    assert resampler.flush().size == 0
    assert (resampler.in_rate_hz, resampler.out_rate_hz) == (ENGINE_HZ, ENGINE_HZ)


@pytest.mark.parametrize(("in_hz", "held_ms"), [(WIRE_HZ, 3.0), (48_000, 3.0), (G711_HZ, 5.5)])
def test_the_polyphase_resampler_holds_back_only_a_few_milliseconds(in_hz: int, held_ms: float) -> None:
    """What the VAD hears of the microphone: soxr holds 9-33 ms after each 20 ms chunk, this ~1.5."""
    polyphase, soxr_stream = PolyphaseResampler(in_hz, ENGINE_HZ), StreamResampler(in_hz, ENGINE_HZ)
    chunk = in_hz // 50
    taken, given = 0, [0, 0]
    held: list[list[float]] = [[], []]
    noise = (0.1 * np.random.default_rng(3).standard_normal(chunk * 50)).astype(np.float32)
    for start in range(0, noise.size, chunk):
        taken += chunk
        for k, resampler in enumerate((polyphase, soxr_stream)):
            given[k] += resampler.process(noise[start : start + chunk]).size
            held[k].append(1000 * (taken / in_hz - given[k] / ENGINE_HZ))
    assert max(held[0][2:]) <= held_ms
    assert np.mean(held[1][2:]) > 3 * held_ms  # what the default resampler holds, for scale


@pytest.mark.parametrize(("in_hz", "out_hz"), [(WIRE_HZ, ENGINE_HZ), (48_000, ENGINE_HZ), (G711_HZ, ENGINE_HZ)])
def test_the_polyphase_resampler_is_soxr_within_the_passband(in_hz: int, out_hz: int) -> None:
    rng = np.random.default_rng(5)
    spectrum = np.fft.rfft(rng.standard_normal(in_hz))
    spectrum[np.fft.rfftfreq(in_hz, 1 / in_hz) > 0.4 * min(in_hz, out_hz)] = 0  # speech band, 80 % of Nyquist
    band = (0.3 * np.fft.irfft(spectrum, in_hz) / np.std(np.fft.irfft(spectrum, in_hz))).astype(np.float32)
    ours, _ = chunked(band, in_hz, out_hz, [in_hz // 50], PolyphaseResampler)
    reference = soxr.resample(band, in_hz, out_hz, quality="VHQ")
    error = (ours - reference)[EDGE_SAMPLES:-EDGE_SAMPLES]
    assert 20 * np.log10(np.std(error) / np.std(reference)) < -60


@pytest.mark.parametrize(
    ("in_hz", "kind"),
    [(WIRE_HZ, PolyphaseResampler), (48_000, PolyphaseResampler), (G711_HZ, PolyphaseResampler),
     (44_100, PolyphaseResampler), (16_001, StreamResampler)],
)  # fmt: skip
def test_the_quick_resampler_is_soxrs_where_the_ratio_is_odd(in_hz: int, kind: Resampler) -> None:
    """16 001 / 16 000 would need a filter of millions of taps at their common rate."""
    resampler = quick_resampler(in_hz, ENGINE_HZ)
    assert type(resampler) is kind
    out = np.concatenate([resampler.process(sine(440.0, in_hz, in_hz)), resampler.flush()])
    assert abs(out.size - ENGINE_HZ) <= 1
