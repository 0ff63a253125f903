"""A WebRTC call's audio through its connection, as a mixin of
:class:`~openrealtime.runtime.connection.Connection` (whose state it uses, through :class:`_Connection`).

The call's input audio comes in through :meth:`CallMedia.post_audio` with its own bounded share of
the inbox: audio that arrives while the session is ``MEDIA_AUDIO_LIMIT`` chunks behind is dropped, as
a live stream cannot wait. The session's ``PlayAudio``, ``EndOfAudio``, ``ClearPlayback`` and
``HoldPlayback`` commands go to the port's track (:meth:`CallMedia._play`), and what the track's media
clock sees comes back through :meth:`CallMedia.post_playback`, in order with everything else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from openrealtime.audio.types import Samples
from openrealtime.protocol import client_events as ce
from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime.backlog import TranscriptionBacklog
from openrealtime.runtime.ports import MediaPort, Session
from openrealtime.session.commands import (
    AudioIn,
    ClearPlayback,
    EndOfAudio,
    HoldPlayback,
    PlayAudio,
    PlaybackResult,
)

log = logging.getLogger(__name__)

# A call's input audio waiting for the session (40 ms chunks: 5 s); past it new audio is dropped.
MEDIA_AUDIO_LIMIT = 125
# What a call's media clock posts: two per response and one per clear, so this is never reached
# unless the session loop is stuck; past it they are dropped (and logged).
PLAYBACK_LIMIT = 64
# A call's audio reaches the session as an append without base64 (its samples decoded by the port).
MEDIA_APPEND = ce.InputAudioBufferAppend(type="input_audio_buffer.append", audio="")
MEDIA_TRANSLATION_APPEND = ce.TranslationAppend(type="session.input_audio_buffer.append", audio="")
BUFFER_FULL_CODE = "input_audio_buffer_full"
# Client events after which a full input buffer may take a call's audio again.
RESUMES_MEDIA = (ce.InputAudioBufferCommit, ce.InputAudioBufferClear, ce.SessionUpdate)


@dataclass
class MediaAudio:
    """A chunk of a call's input audio, in the inbox."""

    samples: Samples
    rate_hz: int


class _Connection(Protocol):
    """What of the connection the mixin uses."""

    session: Session
    kind: SessionKind
    media_dropped_s: float
    _inbox: asyncio.Queue[object]
    _media: MediaPort | None
    _media_queued: int
    _playback_queued: int
    _media_full: bool
    _after_media: bool
    _backlog: TranscriptionBacklog
    _on_append: Callable[[float], None] | None

    def post_playback(self, result: PlaybackResult) -> None: ...

    def _touch(self) -> None: ...


class CallMedia:
    """A call's audio in and out, for :class:`~openrealtime.runtime.connection.Connection`."""

    def post_audio(self: _Connection, samples: Samples, rate_hz: int) -> bool:
        """A call's input audio (mono float32) for the session; ``False`` when dropped (the session is
        ``MEDIA_AUDIO_LIMIT`` chunks behind: a live stream cannot wait)."""
        if self._media_queued >= MEDIA_AUDIO_LIMIT:
            self.media_dropped_s += samples.size / rate_hz
            return False
        self._media_queued += 1
        self._touch()
        self._inbox.put_nowait(MediaAudio(samples, rate_hz))
        return True

    def post_playback(self: _Connection, result: PlaybackResult) -> None:
        """What a call's media clock saw, for the session, in order with everything else."""
        if self._playback_queued >= PLAYBACK_LIMIT:
            log.warning("playback result %r dropped: the session loop is %d behind", result, PLAYBACK_LIMIT)
            return
        self._playback_queued += 1
        self._inbox.put_nowait(result)

    def _take_media(self: _Connection, audio: MediaAudio) -> None:
        """A call's input audio to the session; dropped while its buffer is full (reference 5.9: a
        microphone that never stops, with no turn detection, fills the buffer's 600 s; one error is
        sent, not one per chunk, until the client commits, clears or updates the session)."""
        if self._media_full:
            self.media_dropped_s += audio.samples.size / audio.rate_hz
            return
        started = time.thread_time()
        append = MEDIA_TRANSLATION_APPEND if self.kind is SessionKind.TRANSLATION else MEDIA_APPEND
        self.session.receive(AudioIn(append, audio.samples, audio.rate_hz))
        self._backlog.received(audio.samples.size / audio.rate_hz)
        self._after_media = True
        if self._on_append is not None:
            self._on_append(time.thread_time() - started)

    def _play(self: _Connection, command: PlayAudio | EndOfAudio | ClearPlayback | HoldPlayback) -> None:
        """Hand a playback command to the call's track; a clear answers at once, through the inbox."""
        if self._media is None:  # a bug: only a call's session plays its own audio
            raise TypeError(f"{type(command).__name__} on a connection without media")
        if isinstance(command, PlayAudio):
            self._media.play(command)
        elif isinstance(command, EndOfAudio):
            self._media.end(command.response_id)
        elif isinstance(command, HoldPlayback):
            self._media.hold(command.held)
        else:
            self.post_playback(self._media.clear())
