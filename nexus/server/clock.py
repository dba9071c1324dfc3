"""Time and timers, given to the core and the outbox from outside.

What they decide by time (a login deadline, how long a reader may lag, when
a user was last seen) they ask a `Clock`, as ratelimit.py takes `now` from
its caller: the server runs them on the event loop's clock, and a test runs
them on one it moves itself, with no real sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch: what records keep (last seen)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: what durations are measured on."""

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Calls `callback` once `delay` seconds have passed on `monotonic`."""


class LoopClock:
    """The running event loop's clock and timers, and the system's time."""

    __slots__ = ()

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)
