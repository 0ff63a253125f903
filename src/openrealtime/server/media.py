"""Audio files in and out of the REST endpoints, through PyAV (FFmpeg): uploads decoded to samples,
speech encoded to the format a client asked for, as it is synthesized.

Decoding takes the containers OpenAI lists for uploads (flac, mp3, mp4/m4a, ogg, wav, webm) and
ADTS aac, and only those: FFmpeg probes the bytes against that list of demuxers alone, so an
upload cannot reach a demuxer that opens other files or URLs (a playlist, a concat list). The first
audio stream is decoded, its channels averaged to mono float32, and resampled with one stateful soxr resampler
(:class:`~openrealtime.audio.resample.StreamResampler`); decoding stops as soon as the audio passes
its cap, so a small file that expands to hours costs no more than the cap.

Encoding writes one container per response into an in-memory sink and hands back the bytes each
call produced, so a response streams while the voice speaks. ``pcm`` is raw 16-bit little-endian at
24 kHz, as OpenAI's; ``wav`` is that with a streaming header whose sizes are ``0xFFFFFFFF`` (the
length is unknown when the header goes out; readers take it as "to the end"), as OpenAI's streamed
wav is. PyAV is a dependency of faster-whisper, so it is always installed; it is imported here only.
"""

from __future__ import annotations

import enum
import io
import struct
from dataclasses import dataclass
from typing import cast

import av
import numpy as np

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples

OUTPUT_RATE_HZ = 24_000  # OpenAI's speech audio: pcm is "24kHz, 16-bit signed, little-endian"
UPLOAD_DEMUXERS = "wav,mp3,ogg,flac,matroska,webm,mov,mp4,m4a,aac"
STREAMING_SIZE = 0xFFFFFFFF  # a RIFF size that says "unknown, read to the end"
WAV_HEADER_BYTES = 44
PCM16_BYTES = 2
MAX_DECODE_ERRORS = 8  # corrupt packets skipped before the upload is refused as not audio


class MediaError(ValueError):
    """An upload that is not decodable audio, or is longer than allowed; ``code`` says which."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def decode_upload(data: bytes, *, rate_hz: int, max_s: float) -> Samples:
    """The first audio stream of ``data`` as mono float32 at ``rate_hz``.

    Raises:
        MediaError: ``invalid_audio`` (no audio stream, not a supported container, corrupt) or
            ``audio_too_long`` (over ``max_s`` seconds).
    """
    try:
        container = av.open(io.BytesIO(data), mode="r", options={"format_whitelist": UPLOAD_DEMUXERS})
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(
            "The file is not audio in a supported format (flac, mp3, mp4, m4a, ogg, wav, webm, aac).",
            code="invalid_audio",
        ) from exc
    with container:
        streams = container.streams.audio
        if not streams:
            raise MediaError("The file has no audio stream.", code="invalid_audio")
        return _decode_stream(container, streams[0], rate_hz=rate_hz, max_samples=round(max_s * rate_hz), max_s=max_s)


def _decode_stream(container: object, stream: object, *, rate_hz: int, max_samples: int, max_s: float) -> Samples:
    # Planar float in the stream's own layout: channels are averaged here, not mixed by swresample's
    # matrix (which sums a stereo pair at -3 dB each, 1.41 times a centred voice, past full scale).
    to_float = av.AudioResampler(format="fltp")
    resampler: StreamResampler | None = None
    pieces: list[Samples] = []
    total = 0
    errors = 0
    packets = container.demux(stream)  # type: ignore[attr-defined]
    while True:
        try:
            packet = next(packets)
            frames = packet.decode()
        except StopIteration:
            break
        except av.FFmpegError as exc:  # a corrupt packet: skipped, as players do, unless there are many
            errors += 1
            if errors > MAX_DECODE_ERRORS:
                raise MediaError("The audio in the file is corrupt.", code="invalid_audio") from exc
            continue
        for frame in frames:
            try:
                planar_frames = to_float.resample(frame)
            except ValueError as exc:
                raise MediaError("The audio changes its format midway.", code="invalid_audio") from exc
            for planar in planar_frames:
                if resampler is None:
                    resampler = StreamResampler(planar.sample_rate, rate_hz)
                mono = planar.to_ndarray().mean(axis=0, dtype=np.float32)
                samples = resampler.process(np.ascontiguousarray(mono))
                total += samples.size
                if total > max_samples:
                    message = f"The audio is longer than this server's limit of {max_s:g} s."
                    raise MediaError(message, code="audio_too_long")
                pieces.append(samples)
    if resampler is None:
        raise MediaError("The file holds no audio samples.", code="invalid_audio")
    pieces.append(resampler.flush())
    return np.concatenate(pieces).astype(np.float32, copy=False)


class SpeechFormat(enum.StrEnum):
    """OpenAI's speech ``response_format`` values, each with its codec and container."""

    MP3 = "mp3"
    OPUS = "opus"
    AAC = "aac"
    FLAC = "flac"
    WAV = "wav"
    PCM = "pcm"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]


_MEDIA_TYPES = {
    SpeechFormat.MP3: "audio/mpeg",
    SpeechFormat.OPUS: "audio/ogg",
    SpeechFormat.AAC: "audio/aac",
    SpeechFormat.FLAC: "audio/flac",
    SpeechFormat.WAV: "audio/wav",
    SpeechFormat.PCM: "audio/pcm",
}
# (container, codec) per compressed format; each codec takes s16 mono frames (PyAV converts and
# re-frames them to the codec's own sample format and frame size).
# The ogg muxer holds a page for a second by default; a tenth keeps opus streaming as it is spoken.
_MUXER_OPTIONS = {SpeechFormat.OPUS: {"page_duration": "100000"}}  # microseconds
_CODECS = {
    SpeechFormat.MP3: ("mp3", "libmp3lame"),
    SpeechFormat.OPUS: ("ogg", "libopus"),
    SpeechFormat.AAC: ("adts", "aac"),
    SpeechFormat.FLAC: ("flac", "flac"),
}


def available_formats() -> frozenset[SpeechFormat]:
    """The speech formats this installation can encode (the FFmpeg that PyAV ships decides)."""
    formats = {SpeechFormat.WAV, SpeechFormat.PCM}
    for fmt, (_, codec) in _CODECS.items():
        try:
            av.codec.Codec(codec, "w")
        except (av.FFmpegError, ValueError):
            continue
        formats.add(fmt)
    return frozenset(formats)


class _Sink(io.RawIOBase):
    """A write-only, unseekable file that keeps what was written until it is taken."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        chunk = bytes(data)  # type: ignore[call-overload]
        self._pieces.append(chunk)
        return len(chunk)

    def take(self) -> bytes:
        taken, self._pieces = b"".join(self._pieces), []
        return taken


@dataclass
class SpeechEncoder:
    """Encodes one response's audio as it comes: :meth:`encode` per chunk, then :meth:`finish` once.

    Args:
        fmt: The output format.
        input_rate_hz: The rate of the samples passed to :meth:`encode`.
    """

    fmt: SpeechFormat
    input_rate_hz: int

    def __post_init__(self) -> None:
        self._resampler = StreamResampler(self.input_rate_hz, OUTPUT_RATE_HZ)
        self._header_sent = False
        self._pts = 0
        self._container: av.container.OutputContainer | None = None
        self._sink = _Sink()
        if self.fmt in _CODECS:
            container_format, codec = _CODECS[self.fmt]
            options = _MUXER_OPTIONS.get(self.fmt, {})
            self._container = av.open(self._sink, mode="w", format=container_format, options=options)
            self._stream = cast(
                "av.audio.stream.AudioStream", self._container.add_stream(codec, rate=OUTPUT_RATE_HZ, layout="mono")
            )

    def encode(self, samples: Samples) -> bytes:
        """The bytes of ``samples`` (at ``input_rate_hz``) in the output format; may be empty."""
        return self._encode(self._resampler.process(samples))

    def finish(self) -> bytes:
        """The last bytes: the resampler's tail and the encoder's and container's trailers."""
        tail = self._encode(self._resampler.flush())
        if self._container is None:
            return tail
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return tail + self._sink.take()

    def _encode(self, samples: Samples) -> bytes:
        header = b""
        if self.fmt is SpeechFormat.WAV and not self._header_sent:
            header = wav_header(OUTPUT_RATE_HZ)
        self._header_sent = True
        if self._container is None:
            return header + float_to_pcm16(samples)
        if samples.size:
            pcm = np.frombuffer(float_to_pcm16(samples), dtype="<i2").reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = OUTPUT_RATE_HZ
            frame.pts = self._pts
            self._pts += samples.size
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._sink.take()


def wav_header(rate_hz: int) -> bytes:
    """A 44-byte header of mono 16-bit PCM whose sizes say "unknown length" (a streamed file)."""
    byte_rate = rate_hz * PCM16_BYTES
    return (
        b"RIFF"
        + struct.pack("<I", STREAMING_SIZE)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate_hz, byte_rate, PCM16_BYTES, 8 * PCM16_BYTES)
        + b"data"
        + struct.pack("<I", STREAMING_SIZE)
    )
