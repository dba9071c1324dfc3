"""What the outbox carries: frames in their typed form beside their JSON line.

A frame is made once, where a handler or the core decides to send it, and
every front end reads the form it needs: TCP its JSON line as it is, the
WebSocket front end that line as a text message, the IRC front end the
typed body, with no parsing. A front end whose peers all read a frame
alike (whatever their state) gives its links a `Format`: the outbox encodes
each room broadcast once per format (`Broadcast.encoded`) and hands every
member the same bytes, as it does native peers.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import accumulate
from typing import Any

from nexus.protocol import encode


class Frame:
    """One frame the server sends: its body (a protocol frame, never changed
    once made: every front end reads the same one) and its JSON line."""

    __slots__ = ("body", "line")

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.line = encode(body)

    def __repr__(self) -> str:
        return f"<Frame {self.line[:60]!r}>"


class Encoded:
    """A broadcast's frames in one format: joined once for all members, who
    take it whole or as slices of it (memoryviews, not copies)."""

    __slots__ = ("_ends", "_parts", "data")

    def __init__(self, parts: list[bytes]) -> None:
        self._parts = parts
        self.data = b"".join(parts)
        self._ends: list[int] | None = None  # where each frame ends in `data`

    def span(self, start: int, end: int | None) -> memoryview:
        """Frames [start, end) (end None: to the last)."""
        if self._ends is None:
            self._ends = list(accumulate(map(len, self._parts)))
        ends = self._ends
        first = ends[start - 1] if start else 0
        last = ends[-1 if end is None else end - 1] if end != 0 else 0
        return memoryview(self.data)[first:last]


class Format:
    """How one kind of peer reads frames, the same bytes for each peer of the
    kind: this one, newline-ended JSON (TCP). A front end with another
    framing subclasses it and overrides `encode`."""

    __slots__ = ()

    def encode(self, frame: Frame) -> bytes:
        return frame.line

    def encode_all(self, frames: list[Frame]) -> Encoded:
        """A broadcast's frames, each encoded once for every member."""
        encode = self.encode
        return Encoded([encode(frame) for frame in frames])


JSON_LINES = Format()
