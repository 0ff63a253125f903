"""Resuming a session instead of replaying its conversation (our server's extension,
docs/compatibility.md, Resumable sessions).

When a connection is lost (or the session nears its lifetime cap), the assistant reconnects to the
same URL with ``session_id=<the session's id>``. Our server gives the same session back, its
conversation intact, and nothing is replayed. A server that does not know the extension (OpenAI)
opens a new session under another id: the conversation is then replayed into it as before. A
session our server can no longer resume (``session_not_found``: its grace window ran out, or the
server restarted without a shared store) is opened afresh and replayed too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

RESUME_PARAM = "session_id"
# The refusals after which a new session (and a replay) is the way on.
NOT_RESUMABLE = frozenset({"session_not_found", "session_type_mismatch"})
# What the old connection of a resumed session gets before it is closed.
TAKEN_OVER_CODE = "session_resumed_elsewhere"


def resume_url(url: str, session_id: str) -> str:
    """``url`` with ``session_id`` set in its query (any earlier one replaced)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != RESUME_PARAM]
    query.append((RESUME_PARAM, session_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


def resumed(session: dict[str, object], session_id: str | None) -> bool:
    """Whether the session the server answered with is the one asked back (else: a new one)."""
    return session_id is not None and session.get("id") == session_id


def taken_over_error(event: dict[str, Any]) -> bool:
    """Whether ``event`` is the ``error`` that ends a connection whose session was resumed on another."""
    error = event.get("error") if event.get("type") == "error" else None
    return isinstance(error, dict) and error.get("code") == TAKEN_OVER_CODE
