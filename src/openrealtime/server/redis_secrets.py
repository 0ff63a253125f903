"""Client secrets on Redis (``--state-url redis://``): a secret minted on one front door opens sessions
on every server that shares the Redis (issue 15).

It keeps what :class:`~openrealtime.server.secrets.MemorySecretStore` keeps, in the same terms:

- ``openrealtime:{secrets}:ek:<sha256 hex>``: what the secret grants (kind, session config, expiry),
  keyed by the digest of its value, never the value, and expiring with the secret (Redis's own
  expiry: a lookup of an expired secret finds nothing on any server);
- ``openrealtime:{secrets}:expiry`` (a sorted set: digest by expiry), ``...:sizes`` (a hash: digest
  to characters of config) and ``...:chars`` (their sum): the bounds. A mint is one Lua script, so it
  is atomic across servers: it drops the expired secrets from the index, refuses with
  :class:`~openrealtime.server.secrets.StoreFull` past ``max_live`` secrets or ``max_chars``
  characters (saying when the next place frees), else writes the secret. The bounds are the
  deployment's, not one server's: every server on the Redis counts the same secrets.

All keys share the hash tag ``{secrets}``, so the script also runs on a Redis Cluster. The ``redis``
package is imported only when a Redis URL is used.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from openrealtime.protocol.codec import SessionKind
from openrealtime.server.secrets import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_LIVE_SECRETS,
    ClientSecret,
    SecretStoreUnavailable,
    StoreFull,
    digest,
    full_message,
    is_client_secret,
    new_value,
)
from openrealtime.state.redis_store import redis_client

KEY_PREFIX = "openrealtime:{secrets}:"
EXPIRY_KEY = KEY_PREFIX + "expiry"
SIZES_KEY = KEY_PREFIX + "sizes"
CHARS_KEY = KEY_PREFIX + "chars"

# KEYS: expiry, sizes, chars, the secret's key. ARGV: now_s, max_live, max_chars, size, expires_at_s,
# record, ttl_ms, digest. Returns {1} when written, {0, next_expiry_s or false} when full.
_MINT = """
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, d in ipairs(expired) do
  local size = redis.call('HGET', KEYS[2], d)
  if size then
    redis.call('DECRBY', KEYS[3], size)
    redis.call('HDEL', KEYS[2], d)
  end
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
end
local size = tonumber(ARGV[4])
local chars = tonumber(redis.call('GET', KEYS[3]) or '0')
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) or chars + size > tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, first[2] or false}
end
redis.call('SET', KEYS[4], ARGV[6], 'PX', ARGV[7])
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[8])
redis.call('HSET', KEYS[2], ARGV[8], size)
redis.call('INCRBY', KEYS[3], size)
return {1}
"""


def _secret_key(hex_digest: str) -> str:
    return f"{KEY_PREFIX}ek:{hex_digest}"


class RedisSecretStore:
    """Client secrets in Redis, through ``redis.asyncio`` (a :class:`~openrealtime.server.secrets.SecretStore`).

    Args:
        client: A ``redis.asyncio.Redis`` (``decode_responses=False``).
        max_live: Live secrets the deployment holds at most.
        max_chars: Characters of attached session configs it holds at most.
        clock: Unix time in seconds (injected in tests; servers on one Redis need clocks in step,
            as they do for any expiry).
    """

    def __init__(
        self,
        client: Any,
        *,
        max_live: int = DEFAULT_MAX_LIVE_SECRETS,
        max_chars: int = DEFAULT_MAX_CHARS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        self.max_live = max_live
        self.max_chars = max_chars
        self._clock = clock
        self._mint = client.register_script(_MINT)

    @classmethod
    def from_url(cls, url: str, *, max_live: int = DEFAULT_MAX_LIVE_SECRETS) -> RedisSecretStore:
        return cls(redis_client(url), max_live=max_live)

    async def mint(self, kind: SessionKind, session_json: str, ttl_s: int) -> tuple[str, ClientSecret]:
        now = self._clock()
        value = new_value()
        secret = ClientSecret(kind=kind, session_json=session_json, expires_at_s=int(now) + ttl_s)
        hex_digest = digest(value).hex()
        record = json.dumps({"kind": kind.value, "session": session_json, "expires_at": secret.expires_at_s})
        ttl_ms = max(1, math.ceil((secret.expires_at_s - now) * 1000))
        keys = [EXPIRY_KEY, SIZES_KEY, CHARS_KEY, _secret_key(hex_digest)]
        args = [now, self.max_live, self.max_chars, len(session_json), secret.expires_at_s, record, ttl_ms, hex_digest]
        try:
            written = await self._mint(keys=keys, args=args)
        except Exception as exc:  # the redis package's errors, translated here (its import is lazy)
            raise SecretStoreUnavailable(f"The client secret store (Redis) did not answer: {exc}") from exc
        if int(written[0]) != 1:
            next_expiry = float(written[1]) if len(written) > 1 and written[1] else now + 1
            retry_after_s = max(1, math.ceil(next_expiry - now))
            raise StoreFull(full_message(self.max_live, self.max_chars, retry_after_s), retry_after_s)
        return value, secret

    async def lookup(self, value: str) -> ClientSecret | None:
        if not is_client_secret(value):
            return None
        try:
            raw = await self._redis.get(_secret_key(digest(value).hex()))
        except Exception as exc:
            raise SecretStoreUnavailable(f"The client secret store (Redis) did not answer: {exc}") from exc
        if raw is None:
            return None
        record = json.loads(raw)
        secret = ClientSecret(SessionKind(record["kind"]), record["session"], int(record["expires_at"]))
        return secret if secret.expires_at_s > self._clock() else None

    async def live(self) -> int:
        """Live secrets on the whole Redis (``-1`` when it does not answer: ``/metrics`` goes on)."""
        try:
            return int(await self._redis.zcount(EXPIRY_KEY, f"({self._clock()}", "+inf"))
        except Exception:
            return -1

    async def close(self) -> None:
        await self._redis.aclose()
