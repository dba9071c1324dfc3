"""Token buckets with an injected clock: no sockets, no sleeping."""

from nexus.server.ratelimit import Limiter, TokenBucket


def test_a_bucket_allows_its_burst_then_its_rate():
    """30 at once, then one every 0.1 s at 10/s; the wait says when."""
    bucket = TokenBucket(burst=30, rate=10, now=0.0)
    assert all(bucket.take(0.0) == 0.0 for _ in range(30))
    assert 0.099 < bucket.take(0.0) <= 0.1
    assert bucket.take(0.1) == 0.0
    assert bucket.take(0.1) > 0


def test_a_bucket_refills_only_up_to_its_burst():
    """An idle hour buys the burst again, not an hour of messages."""
    bucket = TokenBucket(burst=3, rate=1, now=0.0)
    for _ in range(3):
        bucket.take(0.0)
    assert [bucket.take(3600.0) for _ in range(4)][-1] > 0


def test_the_limiter_keeps_one_bucket_per_key_and_forgets_idle_ones():
    """Keys are independent; past prune_at, full buckets are dropped."""
    limiter = Limiter(burst=1, rate=1, prune_at=2)
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) > 0
    assert limiter.take("b", 0.0) == 0.0
    limiter.take("c", 10.0)  # a and b are full again by now: pruned
    assert set(limiter._buckets) == {"c"}
