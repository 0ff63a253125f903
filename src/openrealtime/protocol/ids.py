"""Random ids in OpenAI's shape: base62 characters from the system's CSPRNG, one read per id.

Drawing each character with ``secrets.choice`` read the system's random source once per character:
a burst of 2,000 ``conversation.item.create`` (4,000 events with their 21-character event ids, 2,000
item ids) made 128,000 ``urandom`` calls, a quarter of the burst's time (issue 10). One read per id
with rejection sampling keeps every character uniform and unpredictable (session ids open resumes).
"""

from __future__ import annotations

import os
import string

BASE62 = string.ascii_letters + string.digits
_ACCEPT = 256 - 256 % len(BASE62)  # bytes below this map uniformly onto the 62 characters (248)
_TABLE = bytes(ord(BASE62[b % len(BASE62)]) for b in range(256))
_REJECTED = bytes(range(_ACCEPT, 256))


def random_base62(length: int) -> str:
    """``length`` uniformly random base62 characters."""
    out = b""
    while len(out) < length:  # 3 % of bytes are rejected: one read nearly always does
        out += os.urandom(length + length // 4 + 4).translate(_TABLE, _REJECTED)
    return out[:length].decode("ascii")
