"""Text to speech on another server: any OpenAI-compatible ``POST /v1/audio/speech`` that streams its
body (vLLM-Omni, Kokoro-FastAPI, speaches, another openrealtime).

This module owns :class:`RemoteSynthesizer`, a :class:`~openrealtime.contracts.Synthesizer` that
asks for ``response_format: "pcm"`` (OpenAI's raw 24 kHz 16-bit little-endian mono) and yields the
body's audio as it arrives, in pieces of at least ``MIN_CHUNK_MS`` (a stream can arrive a few bytes
at a time). It runs in the engine threads as piper does: the session's clauses each become one
request (``runtime/engines.py``: one ``Synthesize`` a clause, paced by ``runtime/pacing.py``), and
``stop`` is checked between two pieces, closing the connection once set. Voice names are passed
through, or mapped (``voice_map``) onto the server's own (Kokoro's ``af_bella``). The HTTP client,
timeouts and retries are :class:`~openrealtime.engines.remote_http.RemoteEndpoint`'s: a request is
retried only before its audio begins.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from openrealtime.audio.codec import pcm16_to_float
from openrealtime.audio.types import Samples
from openrealtime.engines.remote_http import RemoteEndpoint, RemoteOptions

#: OpenAI's Realtime voice names; every one is sent as it is unless ``voice_map`` names it.
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
SPEECH_PATH = "audio/speech"
PCM_RATE_HZ = 24_000  # OpenAI's "pcm": 24 kHz, 16-bit signed, little-endian, mono
BYTES_PER_SAMPLE = 2
MIN_CHUNK_MS = 20
MS_PER_S = 1000
NORMAL_SPEED = 1.0
# Answers that are not raw PCM (a server that ignored response_format): played, they would be noise.
COMPRESSED_TYPES = ("audio/mpeg", "audio/mp3", "audio/ogg", "audio/opus", "audio/aac", "audio/flac", "audio/webm")


@dataclass(frozen=True)
class RemoteTtsOptions:
    """A speech endpoint, its model and voices.

    Attributes:
        endpoint: The server (its ``/v1`` root), key, timeouts and retries.
        model: The model name to request (``gpt-4o-mini-tts`` for any openrealtime, ``kokoro`` ...).
        voice_map: The voice a session names -> the voice sent (``{"alloy": "af_bella"}``); names
            not in it are sent as they are.
    """

    endpoint: RemoteOptions
    model: str = "gpt-4o-mini-tts"
    voice_map: Mapping[str, str] = field(default_factory=dict)


class RemoteSynthesizer:
    """A :class:`~openrealtime.contracts.Synthesizer` over HTTP; one pooled client for every session.

    It speaks every language it is given (the server's voices read whatever text they get), so a
    front door with it holds no voice of its own.

    Args:
        options: The endpoint, model and voice names.
        transport: An httpx transport to use instead of the network (tests).
        endpoint: A ready :class:`RemoteEndpoint` (tests pass one with a recording sleep).
    """

    sample_rate_hz = PCM_RATE_HZ

    def __init__(
        self,
        options: RemoteTtsOptions,
        *,
        transport: httpx.BaseTransport | None = None,
        endpoint: RemoteEndpoint | None = None,
    ) -> None:
        self.options = options
        self.endpoint = endpoint or RemoteEndpoint(options.endpoint, engine="tts", transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self.endpoint.close()

    def voices(self) -> Sequence[str]:
        """OpenAI's voice names, then the other names of ``voice_map``."""
        return OPENAI_VOICES + tuple(v for v in self.options.voice_map if v not in OPENAI_VOICES)

    def speaks(self, language: str) -> bool:
        """Always: the server's voice reads any text (whether well is the server's choice of voice)."""
        return True

    def request_body(self, text: str, voice: str, speed: float) -> dict[str, Any]:
        """The JSON body of ``POST /audio/speech``."""
        body: dict[str, Any] = {
            "model": self.options.model,
            "input": text,
            "voice": self.options.voice_map.get(voice, voice),
            "response_format": "pcm",
        }
        if speed != NORMAL_SPEED:
            body["speed"] = speed
        return body

    def synthesize(self, text: str, *, voice: str, stop: threading.Event, speed: float = 1.0) -> Iterator[Samples]:
        """Speak ``text`` on the server, yielding its audio as it streams in.

        Args:
            text: What to say.
            voice: A session's voice name (mapped through ``voice_map``).
            stop: Checked between two pieces; once set, the connection is closed and nothing more
                is yielded.
            speed: Speaking rate, sent as OpenAI's ``speed`` (left out at 1).

        Yields:
            Mono float32 audio at 24 kHz.

        Raises:
            EngineError: The server could not be reached, answered an error or compressed audio,
                or the stream broke off or stalled past the read timeout.
        """
        if not text.strip():
            return
        min_bytes = PCM_RATE_HZ * MIN_CHUNK_MS // MS_PER_S * BYTES_PER_SAMPLE
        with self.endpoint.open(SPEECH_PATH, json=self.request_body(text, voice, speed)) as response:
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind in COMPRESSED_TYPES:
                raise self.endpoint.bad_response(f"{kind} audio where raw pcm was asked for")
            pending = bytearray()
            for data in response.iter_bytes():
                if stop.is_set():
                    return
                pending += data
                if len(pending) >= min_bytes:
                    whole = len(pending) - len(pending) % BYTES_PER_SAMPLE
                    yield pcm16_to_float(bytes(pending[:whole]))
                    del pending[:whole]
            whole = len(pending) - len(pending) % BYTES_PER_SAMPLE
            if whole and not stop.is_set():
                yield pcm16_to_float(bytes(pending[:whole]))
