"""PCM16 and G.711 codecs, checked against the ITU-T G.711 formulas written out here, not the code."""

from __future__ import annotations

import numpy as np
import pytest

from openrealtime.audio.codec import (
    G711_RATE_HZ,
    PCM_RATE_HZ,
    AudioFormat,
    decode_audio,
    encode_audio,
    float_to_pcm16,
    pcm16_to_float,
)

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int64)
ALL_INT16_AS_FLOAT = (ALL_INT16 / 32768).astype(np.float32)  # exact: a power-of-two scale
G711 = [AudioFormat.PCMU, AudioFormat.PCMA]


def ulaw_reference(code: int) -> int:
    """ITU-T G.711 mu-law expansion (as in the classic Sun ``g711.c``): code -> linear int16."""
    u = ~code & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


def alaw_reference(code: int) -> int:
    """ITU-T G.711 A-law expansion (as in the classic Sun ``g711.c``): code -> linear int16."""
    a = code ^ 0x55
    t = (a & 0x0F) << 4
    segment = (a & 0x70) >> 4
    if segment == 0:
        t += 8
    elif segment == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (segment - 1)
    return t if a & 0x80 else -t


REFERENCE = {
    AudioFormat.PCMU: np.array([ulaw_reference(c) for c in range(256)], dtype=np.int64),
    AudioFormat.PCMA: np.array([alaw_reference(c) for c in range(256)], dtype=np.int64),
}


def as_int16(samples: np.ndarray) -> np.ndarray:
    return np.rint(samples.astype(np.float64) * 32768).astype(np.int64)


def sine(freq_hz: float, rate_hz: int, n: int, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq_hz * np.arange(n) / rate_hz)).astype(np.float32)


# --- AudioFormat -------------------------------------------------------------------------------------


def test_formats_have_openai_names_rates_and_sample_sizes() -> None:
    assert [(f.value, f.rate_hz, f.bytes_per_sample) for f in AudioFormat] == [
        ("audio/pcm", 24_000, 2),
        ("audio/pcmu", 8_000, 1),
        ("audio/pcma", 8_000, 1),
    ]
    assert (PCM_RATE_HZ, G711_RATE_HZ) == (24_000, 8_000)
    assert AudioFormat("audio/pcmu") is AudioFormat.PCMU


# --- PCM16 -------------------------------------------------------------------------------------------


def test_pcm16_decode_is_little_endian_signed_over_32768() -> None:
    data = b"\x00\x00" + b"\x01\x00" + b"\x00\x01" + b"\xff\xff" + b"\x00\x80" + b"\xff\x7f" + b"\x00\x40"
    out = pcm16_to_float(data)
    assert out.dtype == np.float32
    assert out.tolist() == [0.0, 1 / 32768, 256 / 32768, -1 / 32768, -1.0, 32767 / 32768, 0.5]


def test_pcm16_round_trip_is_exact_for_every_int16_value() -> None:
    data = ALL_INT16.astype("<i2").tobytes()
    samples = pcm16_to_float(data)
    np.testing.assert_array_equal(samples, ALL_INT16_AS_FLOAT)
    assert float_to_pcm16(samples) == data
    assert decode_audio(data, AudioFormat.PCM).tobytes() == samples.tobytes()
    assert encode_audio(samples, AudioFormat.PCM) == data


def test_pcm16_encode_clips_instead_of_wrapping() -> None:
    samples = np.array([1.0, 1.5, 100.0, np.inf, -1.0, -1.5, -100.0, -np.inf], dtype=np.float32)
    out = np.frombuffer(float_to_pcm16(samples), dtype="<i2").tolist()
    assert out == [32767, 32767, 32767, 32767, -32768, -32768, -32768, -32768]


def test_pcm16_encode_rounds_to_nearest() -> None:
    lsb = 1 / 32768
    samples = np.array([0.4 * lsb, 0.6 * lsb, -0.6 * lsb, 2.4 * lsb, -2.6 * lsb, 0.25], dtype=np.float32)
    out = np.frombuffer(float_to_pcm16(samples), dtype="<i2").tolist()
    assert out == [0, 1, -1, 2, -3, 8192]


def test_pcm16_encode_output_is_little_endian_bytes() -> None:
    assert float_to_pcm16(np.array([256 / 32768, -2 / 32768], dtype=np.float32)) == b"\x00\x01\xfe\xff"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", []),
        (b"\x7f", []),
        (b"\x00\x40\x7f", [0.5]),
        (b"\x00\x40\x00\xc0\x01", [0.5, -0.5]),
    ],
)
def test_pcm16_decode_leaves_an_odd_trailing_byte_to_the_caller(data: bytes, expected: list[float]) -> None:
    for out in (pcm16_to_float(data), decode_audio(data, AudioFormat.PCM)):
        assert out.dtype == np.float32
        assert out.tolist() == expected


def test_pcm16_encode_of_nothing_is_nothing() -> None:
    assert float_to_pcm16(np.zeros(0, dtype=np.float32)) == b""
    assert encode_audio(np.zeros(0, dtype=np.float32), AudioFormat.PCMU) == b""


# --- G.711 decode ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "code", "linear"),
    [
        (AudioFormat.PCMU, 0xFF, 0),
        (AudioFormat.PCMU, 0x7F, 0),
        (AudioFormat.PCMU, 0x00, -32124),
        (AudioFormat.PCMU, 0x80, 32124),
        (AudioFormat.PCMU, 0xFE, 8),
        (AudioFormat.PCMU, 0xF0, 120),
        (AudioFormat.PCMU, 0x8F, 16764),
        (AudioFormat.PCMA, 0xD5, 8),
        (AudioFormat.PCMA, 0x55, -8),
        (AudioFormat.PCMA, 0xD4, 24),
        (AudioFormat.PCMA, 0xAA, 32256),
        (AudioFormat.PCMA, 0x2A, -32256),
    ],
)
def test_g711_decodes_known_itu_values(fmt: AudioFormat, code: int, linear: int) -> None:
    assert int(REFERENCE[fmt][code]) == linear  # the reference formula itself is right
    out = decode_audio(bytes([code]), fmt)
    assert out.dtype == np.float32
    assert out.tolist() == [linear / 32768]


@pytest.mark.parametrize("fmt", G711)
def test_g711_decode_matches_the_reference_for_all_256_codes(fmt: AudioFormat) -> None:
    out = decode_audio(bytes(range(256)), fmt)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(as_int16(out), REFERENCE[fmt])


@pytest.mark.parametrize("fmt", G711)
def test_g711_decode_is_one_sample_per_byte(fmt: AudioFormat) -> None:
    assert decode_audio(b"", fmt).size == 0
    assert decode_audio(bytes(range(7)), fmt).size == 7  # no pairing of bytes, odd counts are fine


# --- G.711 encode ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", G711)
def test_g711_encode_picks_the_nearest_code_for_every_int16_value(fmt: AudioFormat) -> None:
    codes = np.frombuffer(encode_audio(ALL_INT16_AS_FLOAT, fmt), dtype=np.uint8)
    assert codes.size == ALL_INT16.size
    error = np.abs(REFERENCE[fmt][codes] - ALL_INT16)
    # The best any code can do, from the reference table alone.
    levels = np.unique(REFERENCE[fmt])
    above = np.clip(np.searchsorted(levels, ALL_INT16), 0, levels.size - 1)
    below = np.clip(above - 1, 0, levels.size - 1)
    best = np.minimum(np.abs(levels[above] - ALL_INT16), np.abs(levels[below] - ALL_INT16))
    np.testing.assert_array_equal(error, best)


@pytest.mark.parametrize("fmt", G711)
def test_g711_every_code_is_a_fixed_point_of_decode_then_encode(fmt: AudioFormat) -> None:
    codes = bytes(range(256))
    again = encode_audio(decode_audio(codes, fmt), fmt)
    expected = bytearray(codes)
    if fmt is AudioFormat.PCMU:
        expected[0x7F] = 0xFF  # mu-law's negative zero decodes to 0, which encodes as positive zero
    assert again == bytes(expected)


@pytest.mark.parametrize(("fmt", "silence"), [(AudioFormat.PCMU, 0xFF), (AudioFormat.PCMA, 0xD5)])
def test_g711_digital_silence_is_the_positive_zero_code(fmt: AudioFormat, silence: int) -> None:
    assert encode_audio(np.zeros(5, dtype=np.float32), fmt) == bytes([silence] * 5)


@pytest.mark.parametrize("fmt", G711)
def test_g711_quantisation_is_symmetric_about_zero(fmt: AudioFormat) -> None:
    positive = np.arange(1, 32768, dtype=np.int64)
    up = np.frombuffer(encode_audio((positive / 32768).astype(np.float32), fmt), dtype=np.uint8)
    down = np.frombuffer(encode_audio((-positive / 32768).astype(np.float32), fmt), dtype=np.uint8)
    np.testing.assert_array_equal(REFERENCE[fmt][down], -REFERENCE[fmt][up])


@pytest.mark.parametrize(("fmt", "top"), [(AudioFormat.PCMU, 0x80), (AudioFormat.PCMA, 0xAA)])
def test_g711_encode_clips_overs_to_the_extreme_codes(fmt: AudioFormat, top: int) -> None:
    samples = np.array([1.0, 2.0, np.inf, -1.0, -2.0, -np.inf], dtype=np.float32)
    bottom = top & 0x7F
    assert encode_audio(samples, fmt) == bytes([top, top, top, bottom, bottom, bottom])


@pytest.mark.parametrize(("fmt", "max_error"), [(AudioFormat.PCMU, 0.02), (AudioFormat.PCMA, 1 / 64)])
def test_g711_round_trip_error_bounds(fmt: AudioFormat, max_error: float) -> None:
    decoded = decode_audio(encode_audio(ALL_INT16_AS_FLOAT, fmt), fmt)
    error = np.abs(decoded.astype(np.float64) - ALL_INT16_AS_FLOAT)
    # Absolute: half the top segment's step (512), or mu-law's 32124 ceiling against full scale.
    assert error.max() <= max_error
    # Relative: logarithmic companding keeps the error under ~4 % of the value above the bottom segments.
    loud = np.abs(ALL_INT16) >= 256
    assert (error[loud] / np.abs(ALL_INT16_AS_FLOAT[loud])).max() < 0.04
    # Near zero the steps are linear and tiny.
    quiet = np.abs(ALL_INT16) < 32
    assert (error[quiet] * 32768).max() <= 8


@pytest.mark.parametrize("fmt", G711)
def test_g711_sine_round_trip_snr_is_telephone_quality(fmt: AudioFormat) -> None:
    samples = sine(440.0, G711_RATE_HZ, G711_RATE_HZ)
    decoded = decode_audio(encode_audio(samples, fmt), fmt)
    noise = decoded.astype(np.float64) - samples
    snr_db = 10 * np.log10(np.sum(samples.astype(np.float64) ** 2) / np.sum(noise**2))
    assert snr_db > 35.0  # G.711 is about 38 dB for a loud sine; a broken table is far below


@pytest.mark.parametrize("fmt", G711)
def test_g711_encode_is_one_byte_per_sample(fmt: AudioFormat) -> None:
    out = encode_audio(sine(300.0, G711_RATE_HZ, 801), fmt)
    assert isinstance(out, bytes)
    assert len(out) == 801
