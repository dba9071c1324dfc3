"""What one IRC connection says, in order: its response buffer.

Lines go out in the order of the client lines they answer, whatever each
takes: the answer to a line is collected (`Label`) until every request it
asked, and those its replies asked, is answered, then told as the client's
capabilities say: with its label (labeled-response), as an ACK when it said
nothing, in a `labeled-response` batch when it said several lines. Lines
that answer no line (events) go out as they come, unless an answer is being
collected, then after it. A translator owns one; nothing else writes a
connection's lines.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from nexus.server.irc.lines import build, tagged


@dataclass(slots=True)
class Label:
    """A client line's answer, collected until every request it asked (and
    those its replies asked) is answered."""

    tag: str | None  # its label (labeled-response), if it has one
    pending: int = 0
    lines: list[str] = field(default_factory=list)
    told: bool = False
    then: list[Callable[[], None]] = field(default_factory=list)  # once told, in order


class Responses:
    """A connection's lines for its client: collected per answer, then encoded."""

    __slots__ = ("answering", "batches", "caps", "chunks", "label", "lines", "server")

    def __init__(self, server: str, caps: set[str]) -> None:
        self.server = server  # the server's name in its lines
        self.caps = caps  # the connection's capabilities (its own set, kept current)
        self.lines: list[str] = []  # lines for the client, in order
        self.chunks: list[bytes | memoryview] = []  # lines encoded, before those in `lines`
        self.label: Label | None = None  # the answer of the line being handled or answered
        self.answering: deque[Label] = deque()  # answers not told yet, in line order
        self.batches = itertools.count(1)

    def emit(self, line: str) -> None:
        """A line of the answer being collected, or, with none, for the client now."""
        label = self.label
        if label is None or label.told:
            self.lines.append(line)
        else:
            label.lines.append(line)

    def batched(self, lines: list[str], kind: str, *params: str) -> None:
        """`lines` in a batch of type `kind`, where the client has `batch`."""
        if "batch" not in self.caps:
            for line in lines:
                self.emit(line)
            return
        ref = f"H{next(self.batches)}"
        self.emit(build(self.server, "BATCH", "+" + ref, kind, *params))
        for line in lines:
            self.emit(tagged(line, "batch", ref))
        self.emit(build(self.server, "BATCH", "-" + ref))

    def answered(self, label: Label) -> None:
        """One of the requests `label`'s line asked is answered: the answers
        whose requests all are, from the oldest line on, are told."""
        label.pending -= 1
        answering = self.answering
        while answering and not answering[0].pending:
            self.tell(answering.popleft())

    def tell_all(self) -> None:
        """Tells every answer collected so far, as it stands: nothing more will
        come for them (the connection ends)."""
        while self.answering:
            self.tell(self.answering.popleft())

    def tell(self, label: Label) -> None:
        label.told = True
        out = self.lines
        if label.tag is None:
            out.extend(label.lines)
        elif not label.lines:
            out.append(build(self.server, "ACK", tags={"label": label.tag}))
        elif len(label.lines) == 1:
            out.append(tagged(label.lines[0], "label", label.tag))
        elif "batch" in self.caps:
            ref = f"L{next(self.batches)}"
            out.append(
                build(
                    self.server, "BATCH", "+" + ref, "labeled-response", tags={"label": label.tag}
                )
            )
            out.extend(tagged(line, "batch", ref) for line in label.lines)
            out.append(build(self.server, "BATCH", "-" + ref))
        else:
            out.extend(label.lines)
        for step in label.then:
            step()

    def encode_lines(self) -> None:
        """Encodes the lines so far, so that shared bytes can follow them."""
        if self.lines:
            self.chunks.append("\r\n".join(self.lines).encode() + b"\r\n")
            self.lines.clear()

    def take(self) -> bytes:
        """Everything said since the last take, encoded."""
        if self.lines:
            self.encode_lines()
        chunks = self.chunks
        if len(chunks) == 1 and type(chunks[0]) is bytes:  # most writes: no copy
            self.chunks = []
            return chunks[0]
        data = b"".join(chunks)
        chunks.clear()
        return data
