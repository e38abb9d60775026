"""Per-key token buckets: ``rate_per_minute`` tokens, refilled continuously, burst = rate.

In-process by default; with Redis the bucket lives in Redis (one Lua script, atomic), so every
replica draws from the same budget.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # a Redis client is handed in only where one is configured
    from redis.asyncio import Redis

# KEYS[1] bucket; ARGV: rate per second, capacity, now (s). Returns seconds to wait (0 = ok).
_TAKE = """
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local rate, cap, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(bucket[1]) or cap
local at = tonumber(bucket[2]) or now
tokens = math.min(cap, tokens + (now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(cap / rate) + 60)
return tostring(wait)
"""


class RateLimiter(Protocol):
    async def take(self, key: str, per_minute: int) -> float:
        """Seconds to wait before the next request is allowed; 0 when this one may pass."""


class LocalRateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, key: str, per_minute: int) -> float:
        rate, now = per_minute / 60.0, time.monotonic()
        tokens, at = self._buckets.get(key, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - at) * rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / rate


class RedisRateLimiter:
    def __init__(self, redis: Redis, prefix: str = "panelql:") -> None:
        self.redis = redis
        self.prefix = prefix  # the deployment's, so another deployment's key 7 is not ours
        self._script = redis.register_script(_TAKE)

    async def take(self, key: str, per_minute: int) -> float:
        wait = await self._script(keys=[f"{self.prefix}rate:{key}"],
                                  args=[per_minute / 60.0, per_minute, time.time()])
        return float(wait)
