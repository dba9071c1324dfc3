"""Token buckets for flood control, sans I/O: the caller passes the clock."""

from __future__ import annotations


class TokenBucket:
    """Allows `burst` actions at once, then `rate` a second."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, burst: float, rate: float, now: float) -> None:
        self.burst = burst
        self.rate = rate
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> float:
        """Spends one token: 0.0 when allowed, else the seconds until one is free."""
        wait = self.wait(now)
        if not wait:
            self.tokens -= 1
        return wait

    def wait(self, now: float) -> float:
        """Seconds until a token is free (0.0: one is), spending nothing."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def full(self, now: float) -> bool:
        return self.tokens + (now - self.stamp) * self.rate >= self.burst


class Limiter:
    """One bucket per key (a user, an account name), forgetting idle keys.

    Keys may come from strangers (login attempts on made-up names), so the
    table is pruned of full buckets once it grows past `prune_at`.
    """

    def __init__(self, burst: float, rate: float, prune_at: int = 10_000) -> None:
        self.burst = burst
        self.rate = rate
        self.prune_at = prune_at
        self._buckets: dict[str, TokenBucket] = {}

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` may act again, spending nothing and remembering no new key."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.wait(now)

    def take(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.prune_at:
                self._buckets = {k: b for k, b in self._buckets.items() if not b.full(now)}
            bucket = self._buckets[key] = TokenBucket(self.burst, self.rate, now)
        return bucket.take(now)

    def __len__(self) -> int:
        """Keys remembered now: what a stranger's made-up names can cost."""
        return len(self._buckets)
