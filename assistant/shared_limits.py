"""Rate limits shared by every replica, kept in Redis.

:class:`assistant.guard.RateLimiter` counts in one process's memory, so N Rasa replicas (or N knowledge
services) behind a balancer would allow N times the limit. With ``ASSISTANT_REDIS_URL`` set (the
Redis that already holds Rasa's locks and the web chat's socket.io messages), the channels and the
search API count in Redis instead, so the limit holds for the whole deployment:

- a sliding window per key, as the in-memory limiter: one sorted set per key of the times the
  accepted messages arrived (Redis's own clock, so replicas' clocks need not agree), trimmed to the
  window and capped at the limit by one Lua script, atomically;
- refused messages are not counted; ``forget_last`` takes back the latest accepted one (the other
  limit refused it);
- keys are hashed (a sender id or an address never appears in Redis) and expire with their window;
- when Redis cannot be reached the limiter counts in memory (per process, as without Redis) and logs
  a warning at most once a minute: a Redis outage must not stop the chat.

``redis`` is imported on first use: the module loads without it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from typing import Any, Optional, Union

from .guard import MESSAGES_PER_MINUTE, RateLimiter

log = logging.getLogger(__name__)

# KEYS[1]: the key's sorted set; ARGV: window (microseconds), limit, a random suffix.
# Returns the member recorded for an accepted message, or false when the key is at its limit.
_ALLOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return false
end
local member = tostring(now) .. ':' .. ARGV[3]
redis.call('ZADD', KEYS[1], now, member)
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return member
"""

WARN_EVERY = 60.0  # seconds between two warnings that Redis is unreachable


class _RedisKeys:
    """What the shared limits have in common: a Redis client made on first use, keys hashed under
    ``assistant:rate:<name>:``, and a warning at most once a minute while Redis is unreachable."""

    def __init__(self, redis_url: str, name: str, timeout: float) -> None:
        if not redis_url.startswith(("redis://", "rediss://")):
            raise ValueError("a shared limit needs a redis:// URL (ASSISTANT_REDIS_URL)")
        self.name = name
        self._url, self._timeout = redis_url, timeout
        self._client: Any = None
        self._warned_at = float("-inf")

    def _redis(self):
        if self._client is None:
            import redis  # Rasa's environment has it for the lock store; the app's from requirements/app.txt

            self._client = redis.Redis.from_url(self._url, socket_timeout=self._timeout,
                                                socket_connect_timeout=self._timeout)
        return self._client

    def _key(self, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"assistant:rate:{self.name}:{digest}"

    def _unreachable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning("shared limit %s: Redis unreachable (%s); deciding in this process until it is back",
                        self.name, type(exc).__name__)


class SharedRateLimiter(_RedisKeys):
    """At most ``limit`` messages per ``window`` seconds per key, counted in Redis for every process
    that uses the same ``name`` (see the module's docstring). ``limit`` <= 0 turns the limit off."""

    def __init__(self, redis_url: str, name: str, limit: int = MESSAGES_PER_MINUTE, window: float = 60.0,
                 timeout: float = 0.25, max_remembered: int = 10_000) -> None:
        super().__init__(redis_url, name, timeout)
        self.limit, self.window = int(limit), float(window)
        self._script: Any = None
        self.fallback = RateLimiter(limit, window)  # when Redis is down: per process, as without Redis
        self._last: "OrderedDict[str, str]" = OrderedDict()  # key -> member of its latest accepted message
        self._max_remembered = max_remembered

    def allow(self, key: str) -> bool:
        """True when ``key`` may send a message now (and counts it)."""
        if self.limit <= 0:
            return True
        try:
            if self._script is None:
                self._script = self._redis().register_script(_ALLOW)
            member = self._script(keys=[self._key(key)],
                                  args=[int(self.window * 1_000_000), self.limit, secrets.token_hex(4)])
        except Exception as exc:  # redis.RedisError, OSError: never let an outage stop the chat
            self._unreachable(exc)
            return self.fallback.allow(key)
        if member is None:
            return False
        self._last[key] = member.decode() if isinstance(member, bytes) else str(member)
        self._last.move_to_end(key)
        while len(self._last) > self._max_remembered:
            self._last.popitem(last=False)
        return True

    def forget_last(self, key: str) -> None:
        """Take back the latest message this process counted for ``key`` (another limit refused it)."""
        member = self._last.pop(key, None)
        if member is None:
            self.fallback.forget_last(key)
            return
        try:
            self._redis().zrem(self._key(key), member)
        except Exception as exc:
            self._unreachable(exc)


class SharedFirstTime(_RedisKeys):
    """``first_time(key)``: True for the first process that asks about ``key`` within ``ttl`` seconds,
    for every process on the same Redis (``SET key 1 NX EX ttl``; the key hashed). Slack retries a
    delivery it thinks was lost, and the retry may reach another replica: this keeps it from being
    answered twice. ``fallback`` (an object with ``first_time(key)``) decides while Redis is unreachable."""

    def __init__(self, redis_url: str, name: str, fallback: Any, ttl: float = 3600.0, timeout: float = 0.25) -> None:
        super().__init__(redis_url, name, timeout)
        self.ttl, self.fallback = int(ttl), fallback

    def first_time(self, key: str) -> bool:
        try:
            return bool(self._redis().set(self._key(key), b"1", nx=True, ex=self.ttl))
        except Exception as exc:
            self._unreachable(exc)
            return self.fallback.first_time(key)


Limiter = Union[RateLimiter, SharedRateLimiter]


def rate_limiter(limit: int, name: str, redis_url: Optional[str] = None, window: float = 60.0) -> Limiter:
    """The limiter for one kind of limit: shared through Redis when ``redis_url`` is set (several
    replicas), else in this process's memory."""
    if redis_url:
        return SharedRateLimiter(redis_url, name, limit, window)
    return RateLimiter(limit, window)
