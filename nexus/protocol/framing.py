"""Framing, sans I/O: a byte stream split into newline-ended frames, and frames to and from JSON.

Plain synchronous code: bytes in, frames out. The TCP front end, the client
and the tests all frame with it; the rules follow docs/protocol.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from nexus.errors import NexusError

__all__ = [
    "MAX_DEPTH",
    "MAX_FRAME",
    "LineFramer",
    "decode",
    "encode",
]

# Security limits: each bounds what one peer can make the other hold or do.
MAX_FRAME = 65_536  # bytes a frame, newline included: bounds a peer's buffer
MAX_DEPTH = 32  # JSON nesting: bounds work on pathological documents


class LineFramer:
    """Splits a byte stream into newline-ended frames of at most `max_frame` bytes.

    `feed()` returns the complete lines seen so far (without `\\n`). Once a
    line grows past the limit, `too_large` is set and nothing more is ever
    returned: the caller answers `frame_too_large` and closes, so no command
    hidden in the tail of an over-long line can run.
    """

    __slots__ = ("_buffer", "max_frame", "too_large")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self.too_large = False

    def feed(self, data: bytes) -> list[bytes]:
        if self.too_large:
            return []
        buffer = self._buffer
        start = len(buffer)
        buffer += data
        lines: list[bytes] = []
        begin = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            if end + 1 - begin > self.max_frame:
                self.too_large = True
                break
            lines.append(bytes(buffer[begin:end]))
            begin = start = end + 1
        if not self.too_large and len(buffer) - begin + 1 > self.max_frame:
            # Even the newline that would end it would not fit.
            self.too_large = True
        if self.too_large:
            self._buffer = bytearray()
        else:
            del buffer[:begin]
        return lines

    @property
    def pending(self) -> int:
        """Bytes of an unterminated line held back (dropped at end of stream)."""
        return len(self._buffer)


def encode(frame: Mapping[str, Any]) -> bytes:
    """One frame on the wire: compact UTF-8 JSON and a newline."""
    return orjson.dumps(frame) + b"\n"


def _depth_ok(value: Any, limit: int) -> bool:
    """True when `value` nests at most `limit` containers deep (iteratively)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def decode(line: bytes) -> dict[str, Any] | None:
    """One frame's bytes -> a JSON object; None for a blank line.

    Refuses (`bad_frame`) invalid UTF-8, lone surrogates, NaN and infinities,
    nesting deeper than MAX_DEPTH and anything that is not an object.
    """
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line.strip():
        return None
    try:
        value = orjson.loads(line)
    except (orjson.JSONDecodeError, RecursionError):
        raise NexusError("bad_frame", "not a JSON object: could not parse the line") from None
    if not isinstance(value, dict):
        raise NexusError("bad_frame", "a frame must be a JSON object")
    # Fewer brackets than the limit cannot nest past it: skip the walk.
    if line.count(b"{") + line.count(b"[") > MAX_DEPTH and not _depth_ok(value, MAX_DEPTH):
        raise NexusError("bad_frame", f"a frame may nest at most {MAX_DEPTH} levels deep")
    return value
