"""Uploads decoded from the containers OpenAI lists, and speech encoded to each of its formats."""

from __future__ import annotations

import io
import struct
import wave

import av
import numpy as np
import pytest

from openrealtime.server.media import (
    OUTPUT_RATE_HZ,
    MediaError,
    SpeechEncoder,
    SpeechFormat,
    available_formats,
    decode_upload,
    wav_header,
)

RATE_HZ = 16_000
TONE_S = 1.5


def tone(rate_hz: int, seconds: float = TONE_S, freq_hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(rate_hz * seconds)) / rate_hz
    return (0.3 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def stereo_wav(rate_hz: int) -> bytes:
    left = (tone(rate_hz) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate_hz)
        out.writeframes(np.stack([left, left], axis=1).tobytes())
    return buf.getvalue()


def encoded(container: str, codec: str, rate_hz: int = 48_000) -> bytes:
    """``tone`` in a container PyAV writes, as a client's recorder would."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate_hz, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone(rate_hz).reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = rate_hz
        for packet in [*stream.encode(frame), *stream.encode(None)]:  # type: ignore[union-attr]
            out.mux(packet)
    return buf.getvalue()


def test_a_stereo_wav_is_mixed_to_mono_and_resampled() -> None:
    audio = decode_upload(stereo_wav(44_100), rate_hz=RATE_HZ, max_s=60)
    assert audio.dtype == np.float32
    assert audio.size == pytest.approx(TONE_S * RATE_HZ, abs=2)
    assert float(np.sqrt(np.mean(audio**2))) == pytest.approx(0.3 / np.sqrt(2), rel=0.02)


@pytest.mark.parametrize(("container", "codec"), [("webm", "libopus"), ("ogg", "libopus"), ("mp4", "aac")])
def test_browser_and_phone_recordings_are_decoded(container: str, codec: str) -> None:
    audio = decode_upload(encoded(container, codec), rate_hz=RATE_HZ, max_s=60)
    assert audio.size == pytest.approx(TONE_S * RATE_HZ, rel=0.05)
    assert float(np.sqrt(np.mean(audio**2))) > 0.15


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"plain text, not audio " * 50,
        b"RIFF" + b"\x00" * 100,
        b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",  # a playlist: never probed
    ],
)
def test_what_is_not_audio_is_refused(data: bytes) -> None:
    with pytest.raises(MediaError) as refused:
        decode_upload(data, rate_hz=RATE_HZ, max_s=60)
    assert refused.value.code == "invalid_audio"


def test_a_file_with_video_only_is_refused() -> None:
    buf = io.BytesIO()
    with av.open(buf, "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=10)
        stream.width, stream.height = 16, 16  # type: ignore[union-attr]
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), dtype=np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:  # type: ignore[union-attr]
            out.mux(packet)
    with pytest.raises(MediaError, match="no audio stream"):
        decode_upload(buf.getvalue(), rate_hz=RATE_HZ, max_s=60)


def test_decoding_stops_at_the_length_cap() -> None:
    with pytest.raises(MediaError) as refused:
        decode_upload(stereo_wav(8_000), rate_hz=RATE_HZ, max_s=1.0)
    assert refused.value.code == "audio_too_long"


def test_every_format_is_available() -> None:
    assert available_formats() == frozenset(SpeechFormat)


@pytest.mark.parametrize("fmt", [f for f in SpeechFormat if f is not SpeechFormat.PCM])
def test_speech_encodes_as_it_comes_and_decodes_back(fmt: SpeechFormat) -> None:
    source = tone(22_050, seconds=2.0)
    encoder = SpeechEncoder(fmt, 22_050)
    pieces = [encoder.encode(source[i : i + 2205]) for i in range(0, source.size, 2205)]
    pieces.append(encoder.finish())
    assert sum(1 for p in pieces[:-1] if p) >= 5, "bytes come out while the audio is still coming in"
    audio = decode_upload(b"".join(pieces), rate_hz=OUTPUT_RATE_HZ, max_s=60)
    assert audio.size == pytest.approx(2.0 * OUTPUT_RATE_HZ, rel=0.05)  # mp3 and aac pad a frame
    assert float(np.sqrt(np.mean(audio**2))) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)  # padding lowers it


def test_pcm_is_raw_24khz_16_bit_and_wav_has_a_streaming_header() -> None:
    pcm = SpeechEncoder(SpeechFormat.PCM, OUTPUT_RATE_HZ)
    assert pcm.encode(np.array([0.5, -0.5], dtype=np.float32)) + pcm.finish() == struct.pack("<hh", 16384, -16384)
    wav = SpeechEncoder(SpeechFormat.WAV, OUTPUT_RATE_HZ)
    data = wav.encode(np.zeros(10, dtype=np.float32)) + wav.finish()
    assert data[:44] == wav_header(OUTPUT_RATE_HZ)
    assert data[4:8] == data[40:44] == b"\xff\xff\xff\xff"
    assert len(data) == 44 + 20


def test_an_upload_with_many_corrupt_packets_is_refused() -> None:
    encoder = SpeechEncoder(SpeechFormat.MP3, OUTPUT_RATE_HZ)
    mp3 = bytearray(encoder.encode(tone(OUTPUT_RATE_HZ, seconds=3.0)) + encoder.finish())
    noise = np.random.default_rng(0)
    for start in range(2000, len(mp3), 200):
        mp3[start : start + 50] = noise.integers(0, 255, 50, dtype=np.uint8).tobytes()
    with pytest.raises(MediaError, match="corrupt"):
        decode_upload(bytes(mp3), rate_hz=RATE_HZ, max_s=60)
