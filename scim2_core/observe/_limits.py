"""Rate limits: one token bucket per principal and tenant, in this process.

RFC 6585 §4: 429 Too Many Requests, with ``Retry-After``. A request refused here is refused
before the engine reads its body or touches the storage (:meth:`Engine.limit_rate` runs the
gate right after authentication), so nothing else changes.

The buckets live in the process's memory: several server processes each allow the rate
(four processes behind one address allow four times it). docs/observability.md says so.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import ConfigurationError, TooManyRequestsError
from ..engine._events import principal_name

__all__ = ["Rate", "RateLimit"]

#: Beyond this many buckets, the full ones (idle long enough to have refilled) are dropped.
_PRUNE_ABOVE = 10_000


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_second`` requests sustained, ``burst`` at once (the bucket's size)."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not (isinstance(self.per_second, (int, float)) and self.per_second > 0):
            raise ConfigurationError(f"a rate must be above 0 per second, got {self.per_second!r}")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ConfigurationError(f"a burst must be a whole number >= 1, got {self.burst!r}")


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class RateLimit:
    """Token buckets keyed by (tenant, principal name): pass to ``engine.limit_rate``.

    ``rate`` applies to every principal; ``tenants`` gives some tenants a rate of their
    own. Each bucket holds up to ``burst`` requests and refills at ``per_second``; a
    request finding it empty is answered 429 with ``Retry-After`` (whole seconds until a
    token is back). Without authentication every request shares one bucket.
    """

    def __init__(
        self,
        rate: Rate,
        *,
        tenants: Mapping[str, Rate] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.tenants = dict(tenants or {})
        self._clock = clock
        self._buckets: dict[tuple[str | None, str | None], _Bucket] = {}
        self._lock = threading.Lock()

    def __call__(self, principal: Any, tenant: str | None) -> None:
        """Take one token for ``principal`` of ``tenant``; raise
        :class:`~scim2_core.observe.TooManyRequestsError` when there is none."""
        rate = self.tenants.get(tenant, self.rate) if tenant is not None else self.rate
        key = (tenant, principal_name(principal))
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= _PRUNE_ABOVE:
                    self._prune(now)
                bucket = self._buckets[key] = _Bucket(float(rate.burst), now)
            else:
                refill = (now - bucket.at) * rate.per_second
                bucket.tokens = min(float(rate.burst), bucket.tokens + refill)
                bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / rate.per_second
        raise TooManyRequestsError(
            math.ceil(wait),
            f"Too many requests: at most {rate.per_second:g} a second (bursts of "
            f"{rate.burst}); retry after the delay in Retry-After.",
        )

    def _prune(self, now: float) -> None:
        """Drop the buckets that have refilled (forgetting them changes nothing)."""
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.at) * self._rate_of(key[0]).per_second
            >= self._rate_of(key[0]).burst
        ]
        for key in full:
            del self._buckets[key]

    def _rate_of(self, tenant: str | None) -> Rate:
        return self.tenants.get(tenant, self.rate) if tenant is not None else self.rate
