"""The content store: uploaded bytes on disk, named by their SHA-256.

`<root>/<sha[:2]>/<sha>` holds each content once, whoever uploaded it;
`<root>/thumbs/<sha>` its thumbnail; `<root>/tmp/` uploads on their way.
An upload streams to a temporary file, hashed as it comes, and only once
it is whole and fsynced is it renamed into place (and the directory
synced): content in place is always whole. Anything that stops an upload
(too big, cut off, cancelled) removes its temporary file; what a crash
leaves in `tmp/` goes with `sweep` at the next start.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from nexus.server.files.background import Background
from nexus.server.store.journal import fsync_directory

HEAD = 4096  # bytes kept from the start of an upload, to tell its type
WRITE = 1 << 20  # bytes gathered before they are hashed and written: one thread hop a MiB
_SHA = re.compile(r"[0-9a-f]{64}")


class TooLarge(Exception):
    """An upload passed its limit (bytes)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Received:
    sha256: str
    size: int
    head: bytes  # its first HEAD bytes


def _checked(sha: str) -> str:
    """`sha` if it is a SHA-256 in hex, so no name can lead out of the store."""
    if not _SHA.fullmatch(sha):
        raise ValueError(f"not a SHA-256: {sha!r}")
    return sha


class Blobs:
    """The files directory of one store (files/shelf.py is its one user)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.thumbs = root / "thumbs"

    def path(self, sha: str) -> Path:
        return self.root / _checked(sha)[:2] / sha

    def thumb_path(self, sha: str) -> Path:
        return self.thumbs / _checked(sha)

    def exists(self, sha: str) -> bool:
        return self.path(sha).exists()

    def shas(self) -> set[str]:
        """Every content stored."""
        if not self.root.exists():
            return set()
        return {
            entry.name
            for part in self.root.iterdir()
            if len(part.name) == 2 and part.is_dir()
            for entry in part.iterdir()
            if _SHA.fullmatch(entry.name)
        }

    def remove(self, sha: str) -> None:
        """Removes a content and its thumbnail (either may be gone already)."""
        for path in (self.path(sha), self.thumb_path(sha)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def sweep(self) -> int:
        """Removes what uploads a crash cut off left in `tmp/`; how many."""
        if not self.tmp.exists():
            return 0
        left = [entry for entry in self.tmp.iterdir() if entry.is_file()]
        for entry in left:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        return len(left)

    async def receive(
        self, chunks: AsyncIterator[bytes], limit: int, background: Background
    ) -> Received:
        """Stores what `chunks` bring, at most `limit` bytes (TooLarge past
        it). The bytes go to disk as they come, never held whole; if
        anything stops the stream, nothing of it stays."""
        for directory in (self.root, self.tmp):
            directory.mkdir(mode=0o700, exist_ok=True)
        temporary = self.tmp / secrets.token_hex(16)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        sha, size, head = hashlib.sha256(), 0, b""
        pending: list[bytes] = []  # pieces not yet absorbed, about WRITE bytes
        gathered = 0
        run = background.run  # hashing and writing take only the time the chat leaves
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise TooLarge(limit)
                if len(head) < HEAD:
                    head += chunk[: HEAD - len(head)]
                pending.append(chunk)
                gathered += len(chunk)
                if gathered >= WRITE:
                    await run(_absorb, fd, sha, pending)
                    pending, gathered = [], 0
            await run(_absorb, fd, sha, pending)
            await run(os.fsync, fd)
            os.close(fd)
            fd = -1
            digest = sha.hexdigest()
            await run(self._place, temporary, digest)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        return Received(digest, size, head)

    def _place(self, temporary: Path, sha: str) -> None:
        """Moves a whole, synced upload into place, or drops it if that
        content is stored already."""
        target = self.path(sha)
        if target.exists():
            temporary.unlink()
            return
        target.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(temporary, target)
        fsync_directory(target.parent)


def _absorb(fd: int, sha: hashlib._Hash, pieces: list[bytes]) -> None:
    """Hashes and writes pieces, in a background thread: hashlib lets go
    of the GIL for big pieces, so the event loop serves others meanwhile.
    The pieces are the ones the socket gave, never joined (a copy a MiB)."""
    for piece in pieces:
        sha.update(piece)
        view = memoryview(piece)
        while view:
            view = view[os.write(fd, view) :]
