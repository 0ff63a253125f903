"""What the server's logs may say: no keys, and no floods.

uvicorn writes every request's path with its query string, to ``uvicorn.access`` for HTTP and to
``uvicorn.error`` for WebSocket upgrades ("WebSocket /v1/realtime?... [accepted]"). The server never
reads a key from the query string, but clients put one there anyway (``?api_key=sk-...``), and it
went to the log in full: :class:`ScrubSecrets` replaces the value of every query parameter whose
name says it holds a secret, and any client secret (``ek_`` and its characters) wherever it stands
in a line, under whatever name or in a path. uvicorn also warns once per connection refused past its connection
cap; :class:`FoldRepeats` lets such a line through once a minute.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

SCRUBBED = "***"
# A query parameter whose name contains key, token, secret, password or auth: its value goes.
SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&][^=&\s\"]*(?:key|token|secret|password|auth)[^=&\s\"]*=)[^&\s\"]*", re.IGNORECASE
)
# A client secret (server/secrets.py: "ek_" and 32 hex characters) anywhere; its prefix stays.
CLIENT_SECRET = re.compile(r"(?<![A-Za-z0-9])ek_[A-Za-z0-9]{8,}")
FOLD_INTERVAL_S = 60.0
FOLDED_MESSAGES = frozenset({"Exceeded concurrency limit."})
FILTERED_LOGGERS = ("uvicorn.access", "uvicorn.error")


def scrub(text: str) -> str:
    """``text`` with the values of secret-looking query parameters, and client secrets, as ``***``."""
    text = SECRET_PARAMETER.sub(lambda match: match["name"] + SCRUBBED, text)
    return CLIENT_SECRET.sub("ek_" + SCRUBBED, text)


class ScrubSecrets(logging.Filter):
    """Scrubs secret query parameters from a record's message and its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


class FoldRepeats(logging.Filter):
    """Lets each of ``messages`` through at most once per ``interval_s``; other records pass."""

    def __init__(
        self,
        messages: frozenset[str] = FOLDED_MESSAGES,
        interval_s: float = FOLD_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.messages, self.interval_s, self.clock = messages, interval_s, clock
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in self.messages:
            return True
        now, last = self.clock(), self._last.get(str(record.msg))
        if last is not None and now - last < self.interval_s:
            return False
        self._last[str(record.msg)] = now
        return True


def install_log_filters() -> None:
    """Put both filters on uvicorn's loggers, once."""
    for name in FILTERED_LOGGERS:
        logger = logging.getLogger(name)
        for kind in (ScrubSecrets, FoldRepeats):
            if not any(isinstance(existing, kind) for existing in logger.filters):
                logger.addFilter(kind())
