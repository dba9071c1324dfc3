"""Files over HTTP, beside the chat connection: upload, download, thumbnail.

The server names the address in its `hello` (`files.url`, with
`files.max_upload`); every request logs in with HTTP Basic, the account's
login token as the secret (what the chat login answered, or the one
`nexus-chat login` saved), so no password is hashed again for it. Bodies
stream in chunks both ways: a 25 MiB file is never held in memory. A
refusal is a TransferError carrying the server's error code, for one line
on the screen or stderr.

A download lands in a temporary file beside its destination and takes its
name only once complete, and never another file's: a name taken gets
` (1)`, ` (2)`... before its extension, as browsers do.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from nexus.protocol import Attachment, Hello

if TYPE_CHECKING:
    import aiohttp

# aiohttp is imported where a transfer starts: it costs a quarter of a second
# at start-up, and most runs of nexus-chat (send, tail, a chat with no file)
# never move a file.

CHUNK = 256 * 1024  # bytes read from disk or the network at a time

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


def _quiet(done: int, total: int) -> None:
    pass


class Uploaded(Attachment):
    """What an upload answers: the attachment, and its path on the web port."""

    url: str


class TransferError(Exception):
    """A file request that failed: the server's code (`too_large`, `not_allowed`...)
    or the client's own (`unreachable`, `no_files`), and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


class Files:
    """One account's HTTP client for a server's files; `close()` when done."""

    def __init__(self, url: str, max_upload: int, username: str, secret: str) -> None:
        self.url = url.rstrip("/")
        self.max_upload = max_upload
        credentials = base64.b64encode(f"{username}:{secret}".encode()).decode()
        self._auth = {"Authorization": "Basic " + credentials}
        self._http: aiohttp.ClientSession | None = None

    @classmethod
    def offered(cls, hello: Hello | None, username: str, secret: str | None) -> Files:
        """The files of the server that said `hello`; TransferError when it has none
        (no web port) or there is no secret to log in with."""
        offer = hello.get("files") if hello is not None else None
        if offer is None:
            raise TransferError("no_files", "this server takes no files (it has no web port)")
        if not secret:
            raise TransferError("auth_required", "no login token or password to send files with")
        return cls(offer["url"], offer["max_upload"], username, secret)

    def link(self, file: Attachment) -> str:
        return f"{self.url}/{file['id']}/{quote(file['name'], safe='')}"

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._http is None or self._http.closed:
            timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)
            self._http = aiohttp.ClientSession(headers=self._auth, timeout=timeout)
        return self._http

    @contextlib.asynccontextmanager
    async def _request(
        self, method: str, url: str, expect: int, **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The response when its status is `expect`; else TransferError with the
        server's code, or `unreachable` when no answer came."""
        import aiohttp

        try:
            async with self._session().request(method, url, **kwargs) as response:
                if response.status != expect:
                    raise await _refusal(response)
                yield response
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            reason = f"no answer from {self.url}: {_reason(exc)}"
            raise TransferError("unreachable", reason) from None

    async def upload(self, path: Path, progress: Progress = _quiet) -> Uploaded:
        """Sends the file at `path` as it is on disk, in chunks; its record comes back."""
        handle, size = _opened(path)
        if size > self.max_upload:
            handle.close()
            raise TransferError(
                "too_large", f"{path.name} has {size:,} bytes; the server takes {self.max_upload:,}"
            )
        headers = {
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(path.name, safe='')}",
            "Content-Length": str(size),
            "Content-Type": "application/octet-stream",
        }
        with handle:
            body = _chunks(handle, size, progress)
            async with self._request("POST", self.url, 201, data=body, headers=headers) as r:
                record: Uploaded = await r.json()
        return record

    async def download(self, file: Attachment, dest: Path, progress: Progress = _quiet) -> Path:
        """Saves `file` at `dest`, or beside it under a free name; returns where."""
        out, temporary = _temporary(dest)
        try:
            with out:
                async with self._request("GET", self.link(file), 200) as response:
                    total = response.content_length or file["size"]
                    done = 0
                    async for chunk in response.content.iter_chunked(CHUNK):
                        await asyncio.to_thread(_write, out, chunk, dest)
                        done += len(chunk)
                        progress(done, total)
            try:
                return place(temporary, dest)
            except OSError as exc:
                raise TransferError("unwritable", f"cannot write {dest}: {_reason(exc)}") from None
        finally:
            temporary.unlink(missing_ok=True)

    async def thumbnail(self, file: Attachment) -> bytes:
        """The server's thumbnail of an image (PNG or JPEG, at most 320x320)."""
        async with self._request("GET", f"{self.url}/{file['id']}/thumb", 200) as response:
            return await response.read()


def _opened(path: Path) -> tuple[IO[bytes], int]:
    """The file to upload, open, and its size."""
    try:
        handle = path.open("rb")
        return handle, os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise TransferError("unreadable", f"cannot read {path}: {_reason(exc)}") from None


def _temporary(dest: Path) -> tuple[IO[bytes], Path]:
    """A new file beside `dest` (its directory made if need be), to download into."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".nexus-", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise TransferError(
            "unwritable", f"cannot write in {dest.parent}: {_reason(exc)}"
        ) from None
    return os.fdopen(fd, "wb"), Path(name)


def _write(out: IO[bytes], chunk: bytes, dest: Path) -> None:
    try:
        out.write(chunk)
    except OSError as exc:
        raise TransferError("unwritable", f"cannot write {dest}: {_reason(exc)}") from None


async def _chunks(handle: IO[bytes], size: int, progress: Progress) -> AsyncIterator[bytes]:
    """The file's first `size` bytes (what Content-Length promised), read in a thread."""
    sent = 0
    progress(0, size)
    while sent < size:
        chunk = await asyncio.to_thread(handle.read, min(CHUNK, size - sent))
        if not chunk:
            break
        sent += len(chunk)
        progress(sent, size)
        yield chunk


async def _refusal(response: aiohttp.ClientResponse) -> TransferError:
    """The error a refusal's JSON body names, or one made of its status."""
    import aiohttp

    try:
        error = (await response.json(content_type=None))["error"]
        return TransferError(str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError, aiohttp.ClientError):
        return TransferError(f"http_{response.status}", response.reason or "refused")


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


# -- names on this machine ----------------------------------------------------

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def safe_name(name: str) -> str:
    """A name another person chose, made a plain file name here: no directory part, no
    control characters, not hidden, never `.` or `..`; `file` if nothing is left."""
    cleaned = _UNSAFE.sub("_", name).strip().lstrip(".")
    return cleaned or "file"


def split_extension(name: str) -> tuple[str, str]:
    """`photo.png` -> (`photo`, `.png`); `logs.tar.gz` keeps `.tar.gz` together."""
    path = Path(name)
    suffixes = path.suffixes
    if len(suffixes) >= 2 and suffixes[-2] == ".tar":
        extension = "".join(suffixes[-2:])
    else:
        extension = path.suffix
    return name[: len(name) - len(extension)], extension


def numbered(dest: Path, number: int) -> Path:
    """`dest` (0), else `name (number).ext` beside it."""
    if not number:
        return dest
    stem, extension = split_extension(dest.name)
    return dest.with_name(f"{stem} ({number}){extension}")


def place(temporary: Path, dest: Path) -> Path:
    """Gives `temporary` the first free name of `dest`, `name (1).ext`, ...: the name is
    taken first (created exclusively), so no file is ever replaced, even one made a
    moment ago by another program."""
    number = 0
    while True:
        path = numbered(dest, number)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            number += 1
            continue
        os.replace(temporary, path)
        return path
