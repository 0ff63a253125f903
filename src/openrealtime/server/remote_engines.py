"""Settings -> the engines that run on other servers: the ASR at ``asr_url``, the voice at ``tts_url``
(``engines/remote_asr.py``, ``engines/remote_tts.py``). The registry calls these instead of loading
Whisper or piper, so a front door with both set holds no speech model of its own.

A remote ASR is called from the ASR worker threads, one request each, so the front door keeps at
least ``REMOTE_ASR_REQUESTS`` of them in flight (each thread waits on the network, not on a core);
the engine server schedules them among its own sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from openrealtime.engines.remote_asr import RemoteAsrOptions, RemoteTranscriber
from openrealtime.engines.remote_http import RemoteOptions
from openrealtime.engines.remote_tts import RemoteSynthesizer, RemoteTtsOptions
from openrealtime.server.settings import Settings
from openrealtime.server.transcript_formats import LANGUAGE_NAMES

log = logging.getLogger(__name__)

REMOTE_ASR_REQUESTS = 8


def remote_transcriber(settings: Settings) -> RemoteTranscriber:
    """The transcriber at ``settings.asr_url``, requesting ``settings.asr_model``.

    Raises:
        ValueError: ``asr_url`` is not an ``http(s)://`` URL.
    """
    url = checked_url(settings.asr_url, "asr_url")
    endpoint = RemoteOptions(url, api_key=settings.asr_api_key, timeout_s=settings.remote_timeout_s)
    codes = {name: code for code, name in LANGUAGE_NAMES.items()}
    transcriber = RemoteTranscriber(RemoteAsrOptions(endpoint, model=settings.asr_model, language_codes=codes))
    language = "multilingual" if transcriber.multilingual else "English only"
    log.info("ASR: %s at %s (%s), no Whisper loaded here", settings.asr_model, url, language)
    return transcriber


def remote_synthesizer(settings: Settings) -> RemoteSynthesizer:
    """The voice at ``settings.tts_url``, requesting ``settings.tts_model``, voices mapped by ``tts_voice_map``.

    Raises:
        ValueError: ``tts_url`` is not an ``http(s)://`` URL, or ``tts_voice_map`` is malformed.
    """
    url = checked_url(settings.tts_url, "tts_url")
    endpoint = RemoteOptions(url, api_key=settings.tts_api_key, timeout_s=settings.remote_timeout_s)
    voice_map = parse_voice_map(settings.tts_voice_map)
    log.info("TTS: %s at %s, no voice loaded here", settings.tts_model, url)
    return RemoteSynthesizer(RemoteTtsOptions(endpoint, model=settings.tts_model, voice_map=voice_map))


def checked_url(url: str | None, name: str) -> str:
    """``url`` if it is an ``http://`` or ``https://`` URL with a host, else a ``ValueError`` naming ``name``."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http:// or https:// URL ending in /v1, got {url!r}")
    return str(url)


def remote_asr_workers(settings: Settings) -> int:
    """ASR requests in flight at once: ``asr_workers``, at least ``REMOTE_ASR_REQUESTS`` for a remote ASR."""
    return max(settings.asr_workers, REMOTE_ASR_REQUESTS) if settings.asr_url else settings.asr_workers


def remote_closers(*engines: object) -> list[Callable[[], None]]:
    """The ``close`` of each remote engine among ``engines``, once each (their connection pools)."""
    remote = {id(e): e for e in engines if isinstance(e, RemoteTranscriber | RemoteSynthesizer)}
    return [engine.close for engine in remote.values()]


def parse_voice_map(spec: str | None) -> dict[str, str]:
    """``"alloy=af_bella, echo=am_adam"`` -> ``{"alloy": "af_bella", "echo": "am_adam"}``.

    Raises:
        ValueError: An entry without ``=`` or with an empty side.
    """
    voices: dict[str, str] = {}
    for entry in (spec or "").split(","):
        if not entry.strip():
            continue
        ours, _, theirs = entry.partition("=")
        if not ours.strip() or not theirs.strip():
            raise ValueError(f"tts_voice_map entries are ours=theirs (alloy=af_bella), got {entry.strip()!r}")
        voices[ours.strip()] = theirs.strip()
    return voices
