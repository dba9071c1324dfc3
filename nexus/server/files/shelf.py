"""The server's files: uploads received into the blob store and recorded,
and files nobody may download any more removed.

An upload is acknowledged only once its bytes are on disk (fsynced) and
its record is written, so a crash before that leaves at most bytes that
no record names, which `open` removes at the next start. Records live in
the model (`Model.files`), changed only by the `Upload` and `Discard`
records; bytes live in the blob store (blobs.py), stored once per content
whoever uploads it, and go when the last record naming them does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from nexus.protocol import FilesOffer
from nexus.server import records
from nexus.server.files.background import Background
from nexus.server.files.blobs import Blobs, TooLarge
from nexus.server.files.sniff import sniff
from nexus.server.files.thumbs import thumbnail
from nexus.server.model import StoredFile
from nexus.server.store import Store, StoreError

log = logging.getLogger("nexus.files")

# An upload no message carries is removed this long after it came: time to
# send it, and to take back and send again a message that carried it.
UNSHARED_GRACE = 24 * 3600.0
SWEEP_EVERY = 600.0  # seconds between looks for files to remove
NAME_MAX = 200  # characters of a file's name, its extension kept


class QuotaExceeded(Exception):
    """The upload would take the uploader past --upload-quota."""


def files_root(data: Path) -> Path:
    """Where a store's files live: beside its data file (`FILE.files/`)."""
    return data.with_name(data.name + ".files")


def clean_name(name: str | None) -> str:
    """A file's name as it is shown and served: its last path part, without
    control characters, at most NAME_MAX characters with its extension
    kept; "file" when nothing is left. `thumb` is the thumbnail's path."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if len(name) > NAME_MAX:
        _, dot, extension = name.rpartition(".")
        keep = extension if dot and len(extension) <= 16 else ""
        name = name[: NAME_MAX - len(keep) - 1].rstrip() + "." + keep if keep else name[:NAME_MAX]
    if name in ("", ".", ".."):
        return "file"
    return "thumb_" if name == "thumb" else name


class Shelf:
    """Uploads in, unreferenced files out; the one owner of the blob store."""

    def __init__(self, store: Store, root: Path, max_upload: int, quota: int) -> None:
        self.store = store
        self.background = Background()
        self.blobs = Blobs(root)
        self.max_upload = max_upload
        self.quota = quota
        # The web port's scheme, host (None when it listens on every address,
        # as the chat port's) and port, once it listens.
        self.web: tuple[str, str | None, int] | None = None
        self.public_url = ""  # --public-url, when set
        self._arriving: Counter[str] = Counter()  # content stored, its record not yet written
        self._sweeper: asyncio.Task[None] | None = None

    def open(self) -> None:
        """At start: leftovers of uploads cut off by a crash, and content no
        record names (stored just before a crash, or left by a removal a
        crash interrupted), are removed."""
        self.blobs.sweep()
        self._remove_unheld()

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_in_background())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self.background.close()

    def offer(self, local: str | None) -> FilesOffer | None:
        """What `hello` says of files to a connection that came to address
        `local`: where to upload, and how much; None before the web port listens."""
        if self.public_url:
            base = self.public_url.rstrip("/")
        elif self.web is not None:
            scheme, named, port = self.web
            host = named or local or "localhost"
            host = f"[{host}]" if ":" in host else host
            base = f"{scheme}://{host}:{port}"
        else:
            return None
        return {"url": base + "/files", "max_upload": self.max_upload}

    def used(self, key: str) -> int:
        """Bytes of files `key` keeps uploaded (each record counts, shared content too)."""
        return sum(f.size for f in self.store.model.files.values() if f.owner == key)

    async def receive(
        self, key: str, name: str, chunks: AsyncIterator[bytes], declared: int | None
    ) -> StoredFile:
        """Stores what `chunks` bring as a file of `key` named `name`; raises
        TooLarge or QuotaExceeded (as soon as it is clear: from `declared`,
        the request's Content-Length, before a byte is read), or StoreError."""
        room = self.quota - self.used(key)
        if declared is not None and declared > self.max_upload:
            raise TooLarge(self.max_upload)
        if declared is not None and declared > room:
            raise QuotaExceeded
        limit = max(0, min(self.max_upload, room))
        try:
            got = await self.blobs.receive(chunks, limit, self.background)
        except TooLarge:
            if limit < self.max_upload:
                raise QuotaExceeded from None
            raise
        self._arriving[got.sha256] += 1  # from now on no sweep removes it
        try:
            if not self.blobs.exists(got.sha256):  # the same content, removed meanwhile
                raise StoreError("the file was removed as it came; send it again")
            kind = sniff(got.head)
            size = await self._thumbnail(got.sha256, kind)
            record = records.Upload(
                user=key,
                id=secrets.token_urlsafe(16),
                sha=got.sha256,
                name=name,
                size=got.size,
                kind=kind,
                ts=time.time(),
                width=size[0] if size else None,
                height=size[1] if size else None,
            )
            file: StoredFile = await self.store.commit(record)
        finally:
            self._arriving[got.sha256] -= 1
            if not self._arriving[got.sha256]:
                del self._arriving[got.sha256]
        return file

    async def _thumbnail(self, sha: str, kind: str) -> tuple[int, int] | None:
        """The image's size, its thumbnail made if this content has none yet."""
        if not kind.startswith("image/"):
            return None
        thumb = self.blobs.thumb_path(sha)
        if thumb.exists():  # the same content, uploaded before
            for file in self.store.model.files.values():
                if file.sha == sha and file.width is not None and file.height is not None:
                    return file.width, file.height
        made = await thumbnail(self.background, self.blobs.path(sha), kind, thumb)
        return (made.width, made.height) if made is not None else None

    async def sweep(self, now: float | None = None) -> int:
        """Removes files no message carries that came over UNSHARED_GRACE ago
        (the records first, durably; then content no record names); how many."""
        cutoff = (time.time() if now is None else now) - UNSHARED_GRACE
        await self.store.turn()
        gone = [f.id for f in self.store.model.files.values() if not f.shared and f.ts < cutoff]
        for file_id in gone:
            self.store.apply(records.Discard(id=file_id))
        if gone:
            await self.store.written()
        self._remove_unheld()
        return len(gone)

    def _remove_unheld(self) -> None:
        held = {f.sha for f in self.store.model.files.values()} | set(self._arriving)
        for sha in self.blobs.shas() - held:
            self.blobs.remove(sha)

    async def _sweep_in_background(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            try:
                removed = await self.sweep()
            except StoreError as exc:  # the store refuses writes for now; next time
                log.warning("files not removed: %s", exc)
                continue
            if removed:
                log.info("removed %d files no message carries", removed)
