"""Fixed-window request counting per API token.

Two stores behind one method, ``hit(key, limit, window) -> Verdict``:

- :class:`MemoryLimiter` counts in this process. Each gunicorn worker then allows the limit on
  its own, so it suits a single process (development, tests).
- :class:`RedisLimiter` counts in Redis with one atomic script (INCR, and PEXPIRE on the first
  hit of a window), so every worker and every host shares one count.

The app uses Redis when ``API_RATELIMIT_STORAGE_URL`` is set, memory otherwise. If Redis cannot
be reached, requests are counted in memory rather than refused or let through uncounted.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis
from flask import current_app

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
DEFAULT_KEY_PREFIX = "chanjiao:api:ratelimit"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one counted request."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # whole seconds until the window ends (Retry-After when refused)

    def headers(self) -> dict[str, str]:
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining)}
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_after)
        return headers


def _verdict(count: int, limit: int, seconds_left: float) -> Verdict:
    return Verdict(
        allowed=count <= limit,
        limit=limit,
        remaining=max(0, limit - count),
        reset_after=max(1, math.ceil(seconds_left)),
    )


class Limiter(Protocol):
    def hit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict: ...


class MemoryLimiter:
    """Per-process fixed windows: a window opens at a key's first hit and lasts ``window`` s."""

    MAX_KEYS = 10_000  # beyond this, expired windows are dropped

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, count)

    def hit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict:
        now = self._clock()
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= window:
                start, count = now, 0
            count += 1
            self._windows[key] = (start, count)
            if len(self._windows) > self.MAX_KEYS:
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < window}
        return _verdict(count, limit, start + window - now)


# KEYS[1] the counter; ARGV[1] the window in milliseconds. Returns {count, milliseconds left}.
# One script, so no client sees a counter without its expiry (a crash between INCR and EXPIRE
# would otherwise leave a counter that never resets).
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""


class RedisLimiter:
    """Fixed windows in Redis, shared by every process that uses the same URL and prefix."""

    def __init__(self, url: str, prefix: str = DEFAULT_KEY_PREFIX):
        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._client.register_script(_HIT_SCRIPT)

    def hit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict:
        count, left_ms = self._script(keys=[f"{self.prefix}:{key}"], args=[window * 1000])
        return _verdict(int(count), limit, int(left_ms) / 1000)

    def close(self) -> None:
        self._client.close()


# Redis clients live for the whole process (one connection pool per URL and prefix), created
# lazily in the worker that first needs one, never in gunicorn's master.
_redis_limiters: dict[tuple[str, str], RedisLimiter] = {}
_lock = threading.Lock()
EXTENSION_KEY = "chanjiao.api_ratelimit"


def _memory_limiter() -> MemoryLimiter:
    # One per app: tests build many apps, and ids restart with each fresh database.
    with _lock:
        return current_app.extensions.setdefault(EXTENSION_KEY, MemoryLimiter())


def _redis_limiter(url: str, prefix: str) -> RedisLimiter:
    with _lock:
        limiter = _redis_limiters.get((url, prefix))
        if limiter is None:
            limiter = _redis_limiters[(url, prefix)] = RedisLimiter(url, prefix)
        return limiter


def check(key: str) -> Verdict | None:
    """Count one request for ``key`` under the app's configuration (None: no limit set)."""
    config = current_app.config
    limit = int(config.get("API_RATELIMIT_PER_MINUTE") or 0)
    if limit <= 0:
        return None
    url = config.get("API_RATELIMIT_STORAGE_URL") or config.get("REDIS_URL")
    if url:
        prefix = str(config.get("API_RATELIMIT_KEY_PREFIX") or DEFAULT_KEY_PREFIX)
        try:
            return _redis_limiter(str(url), prefix).hit(key, limit)
        except redis.RedisError:
            log.warning("rate limit store unreachable; counting in this process", exc_info=True)
    return _memory_limiter().hit(key, limit)
