"""The bus between the nodes of a cluster (`--bus redis://HOST:PORT`).

Changes: after each turn it commits (store/clustered.py), a node publishes
the turn's position on `nexus:changes`; every node hears it and reads from
the database what it has not applied yet. A notice carries nothing the
database does not hold, so a lost one costs only time: each node also looks
on its own every second, and at once when the bus comes back after an outage.

Presence: each node keeps the users connected to it in a Redis set
(`nexus:online:NODE`), says each arrival and departure on `nexus:presence`
at once, and writes the whole set again every HEARTBEAT seconds with an
expiry of LOST_AFTER, listing itself in `nexus:nodes` by the time of its
last beat; on the same beat it reads the other live nodes' sets. So a node
that dies takes its users offline by itself within LOST_AFTER seconds.

While Redis is away the node says so once, and tries again with a backoff;
after LOST_AFTER without it, no user of another node counts as online.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger("nexus.bus")

CHANNEL = "nexus:changes"
PRESENCE = "nexus:presence"
NODES = "nexus:nodes"  # node -> the time of its last beat
HEARTBEAT = 2.0  # seconds between a node's writes of its users (and reads of the others')
LOST_AFTER = 3 * HEARTBEAT  # a node silent this long is gone, and its users offline
RETRY_FIRST = 0.2  # seconds before trying Redis again after it failed
RETRY_MAX = 5.0  # the longest wait between tries while it stays away
CLOSE_WAIT = 2.0  # seconds a stop waits for the bus's tasks to end


def online_key(node: str) -> str:
    return f"nexus:online:{node}"


class Elsewhere(Collection[str]):
    """The users online on the other nodes (each counted once however many
    nodes they are on), as Redis last said."""

    def __init__(self) -> None:
        self._nodes: dict[str, set[str]] = {}
        self._keys: Counter[str] = Counter()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def change(self, node: str, key: str, on: bool) -> None:
        keys = self._nodes.setdefault(node, set())
        if on and key not in keys:
            keys.add(key)
            self._keys[key] += 1
        elif not on and key in keys:
            keys.discard(key)
            self._keys[key] -= 1
            if not self._keys[key]:
                del self._keys[key]

    def replace(self, nodes: dict[str, set[str]]) -> None:
        """The nodes' sets as read whole: the nodes not named are gone."""
        self._nodes = {node: set(keys) for node, keys in nodes.items()}
        self._keys = Counter(key for keys in self._nodes.values() for key in keys)


class Bus:
    """Publishes this node's positions and hears the others' (`heard` is
    called with a position, or with None when notices may have been lost);
    keeps who is online here in Redis, and who is online elsewhere here
    (`elsewhere`). `here` names the users connected to this node."""

    def __init__(
        self,
        url: str,
        node: str,
        heard: Callable[[int | None], None],
        here: Callable[[], Iterable[str]],
    ) -> None:
        self.url = url
        self.node = node
        self.heard = heard
        self.here = here
        self.elsewhere = Elsewhere()
        self._client: Any = None
        self._latest = 0  # the newest position to publish
        self._published = 0
        self._arrivals: deque[tuple[str, bool]] = deque()  # (user key, came) to say
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    def start(self) -> None:
        self._client = redis.Redis.from_url(self.url)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen()),
            loop.create_task(self._publish()),
            loop.create_task(self._beat()),
        ]

    def arrived(self, key: str, came: bool) -> None:
        """A user's first session on this node began (`came`), or its last ended."""
        self._arrivals.append((key, came))
        self._wake.set()

    def tell(self, position: int) -> None:
        """Says that this node's turn at `position` is committed; when several
        wait to be said, only the newest is."""
        self._latest = max(self._latest, position)
        self._wake.set()

    async def _publish(self) -> None:
        delay = RETRY_FIRST
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            while (self._published < self._latest or self._arrivals) and not self._closed:
                try:
                    await self._say_next()
                except (RedisError, OSError) as exc:
                    log.debug("could not publish to the bus: %s", exc)
                    await asyncio.sleep(delay)
                    delay = min(2 * delay, RETRY_MAX)
                    continue
                delay = RETRY_FIRST

    async def _say_next(self) -> None:
        """Says the newest position, or the next arrival or departure."""
        if self._published < self._latest:
            position = self._latest
            await self._client.publish(CHANNEL, str(position))
            self._published = position
            return
        key, came = self._arrivals[0]
        async with self._client.pipeline(transaction=False) as pipe:
            users = online_key(self.node)
            (pipe.sadd if came else pipe.srem)(users, key)
            pipe.expire(users, int(LOST_AFTER))
            pipe.publish(PRESENCE, f"{self.node}\t{key}\t{int(came)}")
            await pipe.execute()
        self._arrivals.popleft()

    async def _beat(self) -> None:
        """Writes this node's users whole and reads the other live nodes'."""
        last_read = time.monotonic()
        while not self._closed:
            try:
                await self._write_and_read()
                last_read = time.monotonic()
            except (RedisError, OSError) as exc:
                log.debug("could not keep presence on the bus: %s", exc)
                if time.monotonic() - last_read > LOST_AFTER:
                    self.elsewhere.replace({})
            await asyncio.sleep(HEARTBEAT)

    async def _write_and_read(self) -> None:
        now = time.time()
        users, here = online_key(self.node), list(self.here())
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(users)
            if here:
                pipe.sadd(users, *here)
                pipe.expire(users, int(LOST_AFTER))
            pipe.zadd(NODES, {self.node: now})
            pipe.zremrangebyscore(NODES, "-inf", now - LOST_AFTER)
            pipe.zrange(NODES, 0, -1)
            nodes = [name.decode() for name in (await pipe.execute())[-1]]
        others = [node for node in nodes if node != self.node]
        async with self._client.pipeline(transaction=False) as pipe:
            for node in others:
                pipe.smembers(online_key(node))
            found = await pipe.execute()
        self.elsewhere.replace(
            {node: {key.decode() for key in keys} for node, keys in zip(others, found, strict=True)}
        )

    async def _listen(self) -> None:
        delay = RETRY_FIRST
        down = False
        while not self._closed:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL, PRESENCE)
                if down:
                    log.info("the bus is back")
                    down = False
                    self.heard(None)  # what was said meanwhile went unheard
                delay = RETRY_FIRST
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        with contextlib.suppress(ValueError, TypeError, UnicodeDecodeError):
                            self._hear(message["channel"], message["data"])
            except (RedisError, OSError) as exc:
                if not down:
                    log.warning(
                        "the bus (%s) is unreachable; looking for changes every second"
                        " until it is back: %s",
                        self.url,
                        exc,
                    )
                    down = True
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(2 * delay, RETRY_MAX)

    def _hear(self, channel: bytes, data: bytes) -> None:
        if channel == CHANNEL.encode():
            self.heard(int(data))
            return
        node, key, came = data.decode().split("\t")
        if node != self.node:
            self.elsewhere.change(node, key, came == "1")

    async def close(self) -> None:
        # redis-py may swallow a cancellation that lands inside one of its
        # calls: the loops also stop on `_closed`, and the wait is bounded.
        self._closed = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CLOSE_WAIT)
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError):
                async with self._client.pipeline(transaction=True) as pipe:
                    pipe.delete(online_key(self.node))
                    pipe.zrem(NODES, self.node)
                    await pipe.execute()
            with contextlib.suppress(RedisError, OSError):
                await self._client.aclose()
