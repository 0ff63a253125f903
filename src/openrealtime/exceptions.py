"""The one exception hierarchy of openrealtime.

::

    OpenRealtimeError
    ├── ProtocolError          the client's fault: becomes an OpenAI-style ``error`` event, session goes on
    │   └── InvalidStateError  a legal message at the wrong moment (e.g. cancel with no active response)
    ├── EngineError            a model failed: becomes ``response.done`` with ``status: failed`` or
    │                          ``conversation.item.input_audio_transcription.failed``
    └── ConnectionClosedError  client side: the server closed the WebSocket

A bug in our own code is none of these: it is logged with its traceback and the connection is closed
with 1011, never disguised as an ``error`` event.
"""

from __future__ import annotations


class OpenRealtimeError(Exception):
    """Base of every error openrealtime raises on purpose."""


class ProtocolError(OpenRealtimeError):
    """A client event that the server refuses, with OpenAI's error fields.

    Args:
        message: Human-readable text, phrased like OpenAI's.
        code: OpenAI's machine-readable code (``invalid_json``, ``unknown_parameter``, ...).
        param: JSON path of the offending field, if any.
        error_type: OpenAI's error ``type`` (``invalid_request_error`` for the client's faults).
        event_id: The ``event_id`` of the client event at fault, copied into ``error.event_id``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        error_type: str = "invalid_request_error",
        event_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.event_id = event_id
        self.message = message
        self.code = code
        self.param = param
        self.error_type = error_type


class InvalidStateError(ProtocolError):
    """A well-formed client event that is not legal in the session's current state."""


class EngineError(OpenRealtimeError):
    """A model engine failed; raised at the one place where engine library errors are translated."""

    def __init__(self, message: str, *, code: str = "engine_error") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ConnectionClosedError(OpenRealtimeError):
    """Client side: the WebSocket closed, with the close code and reason the server gave."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed (code={code}, reason={reason!r})")
        self.code = code
        self.reason = reason
