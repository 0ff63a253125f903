"""What the three session kinds share: their output, the error rule, and the shape of a session update.

A session is fed with :meth:`SessionShell.receive` (client events) and
:meth:`~SessionShell.on_result` (engine results), and drained with :meth:`~SessionShell.drain`:
server events to send and commands for the runtime, in the order they were produced (websockets'
feed-then-drain). Its parts return ordered outputs (:mod:`~openrealtime.session.signals`); the
session takes them in with :meth:`~SessionShell._take`, which queues events and commands and hands
each signal to the session kind's ``_on_signal`` where it stands in the order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Required, TypedDict, TypeVar

from pydantic import BaseModel, ValidationError

from openrealtime.contracts import NoiseSuppressor, VadModel
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import validation_error
from openrealtime.protocol.config import merge_update
from openrealtime.session.commands import COMMAND_TYPES, Command, EngineResult, PlaybackResult, SessionInput
from openrealtime.session.ids import Ids
from openrealtime.session.signals import Output, Signal

C = TypeVar("C", bound=BaseModel)
# What OpenAI's live service leaves out of an echoed transcription config when it is unset.
_DROPPED_WHEN_NULL = ("delay", "keywords", "languages")  # pipecat refuses an unknown "languages"


class SessionEngines(TypedDict, total=False):
    """The keyword arguments every session kind takes besides its info.

    Attributes:
        vad: The frame-level speech model (shared by every session of the process).
        noise: The noise suppressor for ``noise_reduction``; ``None`` makes it a no-op.
        ids: The id source (``Ids(deterministic=True)`` in tests).
    """

    vad: Required[VadModel]
    noise: NoiseSuppressor | None
    ids: Ids | None


class SessionShell:
    """The shell of a sans-I/O session; a session kind adds ``_dispatch``, ``on_result`` and signals."""

    def __init__(self, *, vad: VadModel, noise: NoiseSuppressor | None = None, ids: Ids | None = None) -> None:
        self._vad = vad
        self._noise = noise
        self._ids = ids or Ids()
        self._events: list[se.ServerEvent] = []
        self._commands: list[Command] = []

    def receive(self, event: SessionInput) -> None:
        """Handle one parsed client event; a client error becomes an ``error`` event, state unchanged."""
        try:
            self._dispatch(event)
        except ProtocolError as exc:
            self.error(exc, event.event_id)

    def error(self, exc: ProtocolError, event_id: str | None = None) -> None:
        self._events.append(se.Error.of(exc, event_id))

    def on_result(self, result: EngineResult) -> None:
        """Take an engine result; one of an unknown (cancelled, superseded) job is dropped."""
        raise NotImplementedError

    def on_playback(self, result: PlaybackResult) -> None:
        """What a call's media clock saw; only a session whose audio the server plays has any."""

    def drain(self) -> tuple[list[se.ServerEvent], list[Command]]:
        """What was produced since the last drain: server events to send, commands to run."""
        events, commands = self._events, self._commands
        self._events, self._commands = [], []
        return events, commands

    def _take(self, outputs: Iterable[Output]) -> None:
        for output in outputs:
            if isinstance(output, se.ServerEvent):
                self._events.append(output)
            elif isinstance(output, COMMAND_TYPES):
                self._commands.append(output)
            else:
                self._on_signal(output)

    def _dispatch(self, event: SessionInput) -> None:
        raise NotImplementedError

    def _on_signal(self, signal: Signal) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not take {type(signal).__name__}")


def session_update(
    current: C,
    event: ce.SessionUpdate,
    *,
    accepts_model: Callable[[str], bool],
    exclude: set[str],
) -> C:
    """``current`` with a ``session.update`` merged in (nested objects merge, as OpenAI's do).

    Raises:
        ProtocolError: The update is for another kind of session, the merge is invalid, or it names a
            transcription model this server lacks.
    """
    kind = getattr(current, "type", "")
    if not isinstance(event.session, type(current)):
        raise ProtocolError(
            f"Invalid value: '{getattr(event.session, 'type', '')}'. This is a {kind} session: "
            f"session.type must be '{kind}'.",
            code="invalid_value",
            param="session.type",
            event_id=event.event_id,
        )
    update = event.session.model_dump(mode="json", exclude_unset=True, exclude=exclude)
    merged = merge_update(current.model_dump(mode="json"), update)
    try:
        config = type(current).model_validate(merged)
    except ValidationError as exc:  # a merge can still be invalid (e.g. strength without type)
        raise validation_error(exc, event.event_id) from None
    transcription = config.audio.input.transcription  # type: ignore[attr-defined]
    model = transcription.model if transcription is not None else None
    if model is not None and not accepts_model(model):
        raise ProtocolError(
            f"Invalid value: '{model}'. This server has no transcription model "
            "of that name; use an OpenAI name (e.g. 'gpt-4o-transcribe') or a configured engine.",
            code="invalid_value",
            param="session.audio.input.transcription.model",
            event_id=event.event_id,
        )
    return config


def session_body(config: BaseModel, *, exclude: set[str]) -> dict[str, Any]:
    """A session config as ``session.created`` / ``.updated`` echo it: unset optional fields left out."""
    session = config.model_dump(mode="json", exclude=exclude)
    transcription = session["audio"]["input"]["transcription"]
    if transcription is not None:
        for key in _DROPPED_WHEN_NULL:
            if transcription.get(key) is None:
                transcription.pop(key, None)
    return {k: v for k, v in session.items() if k != "type"}
