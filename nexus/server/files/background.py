"""Threads for the files' heavy work (hashing and writing uploads, drawing
thumbnails), at the lowest CPU priority.

An upload over loopback or a fast LAN can arrive faster than one core
hashes it; at the normal priority that work would take its share of the
core from the chat's event loop, and every member's latency would grow. At
nice 19 the kernel gives these threads only what the loop leaves. The
receiver waits for each piece to be absorbed before it reads on, so when
they are held back, TCP's flow control slows the sender too: an upload is
as fast as the idle CPU allows, and no faster.

Only Linux lowers one thread's priority (`setpriority` on a thread id);
elsewhere the threads run at the process's priority.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
LOWEST = 19
THREADS = 2  # an upload's pieces, and a thumbnail beside it


def _lower_this_thread() -> None:
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
    except OSError:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, thread, LOWEST)


class Background:
    """A small pool of lowest-priority threads; `run` awaits a job in it."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(
            THREADS, thread_name_prefix="nexus-files", initializer=_lower_this_thread
        )

    async def run(self, job: Callable[..., T], *args: object) -> T:
        """`job(*args)` in the pool. A cancelled caller still waits for the
        job to end: the file it works on must not be closed (and its
        descriptor reused) under it."""
        done = asyncio.get_running_loop().run_in_executor(self._pool, job, *args)
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await done
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
