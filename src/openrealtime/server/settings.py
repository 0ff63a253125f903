"""Server settings from flags and ``OPENREALTIME_*`` environment variables (flags win)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

ENV_PREFIX = "OPENREALTIME_"


@dataclass(frozen=True)
class Settings:
    """Everything a server process is configured with.

    Attributes:
        host: Address to bind; loopback unless told otherwise.
        port: TCP port (0 picks a free one).
        api_key: If set, every WebSocket must carry it (Bearer header or browser subprotocol).
        asr_model: ``tiny.en`` (bundled), ``base`` (bundled multilingual), a CTranslate2 path or name.
        asr_device: ``cpu``, ``cuda`` or ``auto``.
        asr_compute_type: CTranslate2 compute type.
        threads: CPU threads per model call.
        log_level: Python logging level name.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    asr_model: str = "tiny.en"
    asr_device: str = "cpu"
    asr_compute_type: str = "int8"
    threads: int = 2
    log_level: str = "info"

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Defaults, then ``OPENREALTIME_<FIELD>`` variables, then non-``None`` ``overrides``."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = int(raw) if f.type in ("int", int) else raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def redacted(self) -> dict[str, Any]:
        """For logs: the settings with the key hidden."""
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["api_key"] = "***" if self.api_key else None
        return shown
