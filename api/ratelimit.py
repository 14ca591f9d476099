"""Per-key request rate limits through the `limits` library: a moving window per API key.

The counters live in Redis when `redis_url` is set, so every API process shares one budget per
key, and in process memory otherwise (one API process: the embedded default). Requests over the
limit raise RateLimited (429, `rate_limited`) with Retry-After in whole seconds: when the oldest
request of the window leaves it. Unauthenticated routes (health, metrics, the OpenAPI document)
are not limited. If Redis cannot be reached the request is let through with a warning: the limit
protects capacity, and the routes that need Redis (job submission) fail on their own with 503.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from core.errors import RateLimited
from core.logging import get_logger
from core.settings import Settings

log = get_logger("api.ratelimit")


@dataclass
class KeyRateLimiter:
    """Counts each API key's requests in a moving window; `None` limit means unlimited."""

    limiter: MovingWindowRateLimiter | None
    item: RateLimitItemPerSecond | None
    storage: Storage | None

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRateLimiter:
        """The limiter the settings ask for, with Redis storage when `redis_url` is set."""
        if settings.rate_limit_requests == 0:
            return cls(None, None, None)
        storage: Storage
        if settings.redis_url:
            storage = RedisStorage(
                settings.redis_url,
                key_prefix="nightowl-ratelimit",
                wrap_exceptions=True,
                socket_timeout=2,
                socket_connect_timeout=2,
            )
        else:
            storage = MemoryStorage(wrap_exceptions=True)
        item = RateLimitItemPerSecond(
            settings.rate_limit_requests, settings.rate_limit_window_seconds, namespace="key"
        )
        return cls(MovingWindowRateLimiter(storage), item, storage)

    def hit(self, key_id: str) -> None:
        """Count one request of `key_id`; RateLimited when the window is already full."""
        if self.limiter is None or self.item is None:
            return
        try:
            if self.limiter.hit(self.item, key_id):
                return
            reset_at = self.limiter.get_window_stats(self.item, key_id).reset_time
        except StorageError as exc:
            log.warning("api.ratelimit.storage_failed", error=str(exc))
            return
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise RateLimited(
            f"rate limit of {self.item.amount} requests per {self.item.multiples} s exceeded "
            f"for this API key; retry after {retry_after} s",
            retry_after,
        )
