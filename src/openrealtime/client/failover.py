"""Several front doors of one service, or one load balancer retried: which to try, in what order, when.

A door that will not take a session says so with a close before ``session.created`` (docs/readiness.md):
1013 ("Try Again Later": ``session_limit_reached`` when full, ``server_draining`` when it is shutting
down) or 1012 ("Service Restart"). Those, a connect that fails (refused, reset, timed out) and a
``5xx`` answer to the upgrade mean "try another door"; anything else (a wrong key: 3000, a bad
request: 4000, a ``4xx``) is the caller's to see, at once. :class:`Failover` is the policy, pure:
round-robin over the URLs, starting after the door just lost, and after each full round a backoff
(``backoff_s`` doubling up to ``max_backoff_s``, with jitter so that the sessions of a drained door
do not all come back at once), ``attempts`` connects in all.
:meth:`~openrealtime.client.connection.RealtimeConnection.connect` carries it out.

A session ended by a drain (``server_shutting_down``, then 1012) is not refused but moved: the
assistant resumes it (``?session_id=``) through the same policy, starting at the next door.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013
# Closes before session.created after which another door (or the balancer again) may serve.
CLOSE_TRY_ELSEWHERE = frozenset({1006, CLOSE_SERVICE_RESTART, CLOSE_TRY_AGAIN_LATER})
# The error codes that come with them (for readers; the close code decides).
REFUSED_CODES = frozenset({"session_limit_reached", "server_draining"})
SHUTTING_DOWN_CODE = "server_shutting_down"
DEFAULT_ATTEMPTS = 8
DEFAULT_BACKOFF_S = 0.25
DEFAULT_MAX_BACKOFF_S = 5.0
JITTER = 0.25  # a backoff is cut by up to this fraction, at random
# How long a door may take to answer a connect with session.created: a resume waits there for the
# session's old door to let go (up to 10 s when that door died: server/resume.py).
FIRST_EVENT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Failover:
    """The doors to try and how.

    Args:
        urls: WebSocket URLs of equivalent front doors (or one balancer's), tried in turn.
        attempts: Connects in all before giving up.
        backoff_s: The wait after the first full round without success; doubled after each.
        max_backoff_s: The longest wait between two rounds.
    """

    urls: tuple[str, ...]
    attempts: int = DEFAULT_ATTEMPTS
    backoff_s: float = DEFAULT_BACKOFF_S
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("Failover needs at least one URL")
        if self.attempts < 1:
            raise ValueError("Failover needs at least one attempt")

    @classmethod
    def of(cls, urls: str | Sequence[str] | Failover) -> Failover:
        """``urls`` as a policy with the defaults (a policy is kept as it is)."""
        if isinstance(urls, Failover):
            return urls
        return cls((urls,) if isinstance(urls, str) else tuple(urls))

    def schedule(
        self, *, after: int | None = None, rng: Callable[[], float] = random.random
    ) -> Iterator[tuple[int, float]]:
        """Each attempt's door (its index in ``urls``) and the seconds to wait before it: round-robin
        from the door after ``after`` (the one just lost; the first door when ``None``), a backoff
        before each new round."""
        count = len(self.urls)
        start = (after + 1) % count if after is not None else 0
        for attempt in range(self.attempts):
            wait_s = 0.0
            if attempt and attempt % count == 0:
                rounds = attempt // count
                wait_s = min(self.backoff_s * 2 ** (rounds - 1), self.max_backoff_s) * (1 - JITTER * rng())
            yield (start + attempt) % count, wait_s

    def with_urls(self, urls: Sequence[str]) -> Failover:
        """The same policy over other URLs (the same doors with ``?session_id=`` set, say)."""
        return Failover(tuple(urls), self.attempts, self.backoff_s, self.max_backoff_s)


def retry_elsewhere(close_code: int | None) -> bool:
    """Whether a close before ``session.created`` means "another door, or later" (not the caller's fault)."""
    return close_code is None or close_code in CLOSE_TRY_ELSEWHERE


def shutting_down_error(event: dict[str, object]) -> bool:
    """Whether ``event`` is the ``error`` that ends a session drained by its door (1012 follows)."""
    error = event.get("error") if event.get("type") == "error" else None
    return isinstance(error, dict) and error.get("code") == SHUTTING_DOWN_CODE
