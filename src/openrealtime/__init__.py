"""openrealtime: OpenAI's Realtime protocol, served offline on a CPU, and a client that uses it well.

The public surface is what this module re-exports; ``tests/test_public_api.py`` guards it.
"""

from openrealtime.exceptions import (
    ConnectionClosedError,
    EngineError,
    InvalidStateError,
    OpenRealtimeError,
    ProtocolError,
)

__version__ = "0.1.0"

__all__ = [
    "ConnectionClosedError",
    "EngineError",
    "InvalidStateError",
    "OpenRealtimeError",
    "ProtocolError",
    "__version__",
]
