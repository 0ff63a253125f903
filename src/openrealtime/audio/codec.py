"""Wire audio formats <-> float32: PCM16 LE at 24 kHz, and G.711 mu-law / A-law at 8 kHz.

OpenAI's formats are ``audio/pcm`` (rate 24000), ``audio/pcmu`` and ``audio/pcma`` (ITU-T G.711).
G.711 is decoded and encoded through 256- and 65536-entry lookup tables built once at import.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from openrealtime.audio.types import Samples

PCM_RATE_HZ = 24_000
G711_RATE_HZ = 8_000
_PCM16_SCALE = 32768.0


class AudioFormat(enum.StrEnum):
    """OpenAI's audio format ``type`` values."""

    PCM = "audio/pcm"
    PCMU = "audio/pcmu"
    PCMA = "audio/pcma"

    @property
    def rate_hz(self) -> int:
        return PCM_RATE_HZ if self is AudioFormat.PCM else G711_RATE_HZ

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self is AudioFormat.PCM else 1


def pcm16_to_float(data: bytes) -> Samples:
    """Decode little-endian signed 16-bit PCM; a trailing odd byte is the caller's to keep."""
    ints = np.frombuffer(data, dtype="<i2", count=len(data) // 2)
    return (ints.astype(np.float32) / _PCM16_SCALE).astype(np.float32, copy=False)


def float_to_pcm16(samples: Samples) -> bytes:
    """Encode float32 to PCM16 LE with clipping (no wrap-around on overs)."""
    scaled = np.clip(samples * _PCM16_SCALE, -32768.0, 32767.0)
    return bytes(np.rint(scaled).astype("<i2").tobytes())


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


def _encode_table(decode: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """For every int16 value, the G.711 code whose decoded value is nearest.

    As in G.711, quantisation is symmetric about zero: a tie goes to the smaller magnitude, and zero
    (digital silence) encodes to the positive zero codes 0xFF (mu-law) and 0xD5 (A-law).
    """
    values = decode.astype(np.int32)
    codes = np.arange(values.size)
    # Sort by value, positive codes (sign bit set in both laws) first, so that of mu-law's two zeros
    # np.unique keeps 0xFF.
    order = np.lexsort(((codes & 0x80) == 0, values))
    sorted_values, first = np.unique(values[order], return_index=True)
    sorted_codes = order[first]
    all_values = np.arange(-32768, 32768, dtype=np.int32)
    right = np.clip(np.searchsorted(sorted_values, all_values), 1, len(sorted_values) - 1)
    left = right - 1
    left_distance = np.abs(all_values - sorted_values[left])
    right_distance = np.abs(sorted_values[right] - all_values)
    pick_left = (left_distance < right_distance) | (
        (left_distance == right_distance) & (np.abs(sorted_values[left]) < np.abs(sorted_values[right]))
    )
    return sorted_codes[np.where(pick_left, left, right)].astype(np.uint8)


_ULAW_DECODE = _ulaw_decode_table()
_ALAW_DECODE = _alaw_decode_table()
_ULAW_ENCODE = _encode_table(_ULAW_DECODE)
_ALAW_ENCODE = _encode_table(_ALAW_DECODE)


def decode_audio(data: bytes, fmt: AudioFormat) -> Samples:
    """Decode wire bytes of ``fmt`` to float32 at ``fmt.rate_hz``."""
    if fmt is AudioFormat.PCM:
        return pcm16_to_float(data)
    table = _ULAW_DECODE if fmt is AudioFormat.PCMU else _ALAW_DECODE
    codes = np.frombuffer(data, dtype=np.uint8)
    return (table[codes].astype(np.float32) / _PCM16_SCALE).astype(np.float32, copy=False)


def encode_audio(samples: Samples, fmt: AudioFormat) -> bytes:
    """Encode float32 at ``fmt.rate_hz`` to wire bytes of ``fmt``."""
    if fmt is AudioFormat.PCM:
        return float_to_pcm16(samples)
    ints = np.rint(np.clip(samples * _PCM16_SCALE, -32768.0, 32767.0)).astype(np.int32) + 32768
    table = _ULAW_ENCODE if fmt is AudioFormat.PCMU else _ALAW_ENCODE
    return bytes(table[ints].tobytes())


class StreamDecoder:
    """Wire bytes of one input stream to float32; a PCM16 sample split across two appends waits.

    Clients cut their appends anywhere, so an odd PCM16 append carries one byte to the next; a change
    of format drops it.
    """

    def __init__(self) -> None:
        self._format: AudioFormat | None = None
        self._odd_byte = b""

    def decode(self, data: bytes, fmt: AudioFormat) -> Samples:
        if fmt is not self._format:
            self._format, self._odd_byte = fmt, b""
        if fmt is AudioFormat.PCM:
            data = self._odd_byte + data
            self._odd_byte = data[-1:] if len(data) % 2 else b""
            if self._odd_byte:
                data = data[:-1]
        return decode_audio(data, fmt)


@dataclass(frozen=True)
class AudioOut:
    """Output audio as it leaves a session: samples at ``format.rate_hz``, encoded only at the edge.

    The WebSocket encodes it into ``format`` and base64 (``response.output_audio.delta``); a media
    transport takes the samples as they are.
    """

    samples: Samples
    format: AudioFormat

    @property
    def rate_hz(self) -> int:
        return self.format.rate_hz

    def wire_bytes(self) -> bytes:
        return encode_audio(self.samples, self.format)
