"""Id generation: OpenAI's shapes in production, numbered and predictable in tests."""

from __future__ import annotations

import itertools

from openrealtime.protocol.ids import random_base62

_RANDOM_ID_LENGTH = 20


class Ids:
    """Makes ``item_…``, ``resp_…``, ``call_…``, ``sess_…`` and job ids.

    Args:
        deterministic: Number ids per prefix (``item_1``, ``item_2``) so golden tests can compare them.
    """

    def __init__(self, *, deterministic: bool = False) -> None:
        self._deterministic = deterministic
        self._counters: dict[str, itertools.count[int]] = {}

    def new(self, prefix: str) -> str:
        if self._deterministic:
            counter = self._counters.setdefault(prefix, itertools.count(1))
            return f"{prefix}_{next(counter)}"
        return f"{prefix}_" + random_base62(_RANDOM_ID_LENGTH)
