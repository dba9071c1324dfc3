"""The file endpoints of the web port: `POST /files`, `GET /files/<id>/<name>`
and `GET /files/<id>/thumb` (docs/protocol.md, "Files").

Every request names its user with HTTP Basic credentials: a login token
(a digest look-up: what nexus-chat and the page send) or the password
(argon2, counted against the login rate like a login: what an IRC client,
or a browser's own prompt, sends). The body of an upload is the file
itself, as IRC's FILEHOST draft has it, streamed to disk.

What is served is what the bytes are (`sniff`), never what a name or an
uploader claims; only images, audio and video are shown in a browser,
and nothing served can run script in this server's origin: `nosniff`,
`Content-Disposition: attachment` for the rest, a sandboxing CSP.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
import warnings
from typing import Any, NoReturn
from urllib.parse import quote

from aiohttp import web
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

from nexus.errors import NexusError
from nexus.server.auth import PasswordHashing, token_valid
from nexus.server.files.blobs import TooLarge
from nexus.server.files.shelf import QuotaExceeded, Shelf, clean_name
from nexus.server.files.sniff import inline
from nexus.server.frontends.http import Http
from nexus.server.model import StoredFile, user_key
from nexus.server.policy import Policy
from nexus.server.store import Store, StoreError

REMEMBERED = 300.0  # seconds a password that checked out is taken without argon2 again
FILE_CSP = "default-src 'none'; sandbox"
REALM = 'Basic realm="nexus", charset="UTF-8"'


class Credentials:
    """Who a request's Basic credentials name. A password that checked out
    is remembered for REMEMBERED seconds, by digest and for as long as it is
    still the account's, so a browser's credentials, sent again with every
    request, do not cost an argon2 run each."""

    def __init__(self, store: Store, hashing: PasswordHashing, policy: Policy) -> None:
        self.store = store
        self.hashing = hashing
        self.policy = policy
        self._remembered: dict[tuple[str, str], tuple[str, float]] = {}

    async def user(self, request: web.Request) -> str:
        """The key of the account the request logs in as; or an HTTP error."""
        name, secret = _basic(request.headers.get("Authorization", ""))
        key = user_key(name)
        user = self.store.model.user(name)
        if user is None or user.guest:  # as long as a wrong password: no name is told apart
            await self._check_password(request, None, None, secret)
            _unauthorized("auth_failed")
        if not token_valid(user.tokens, secret):
            digest = hashlib.sha256(secret.encode()).hexdigest()
            held, until = self._remembered.get((key, digest), ("", 0.0))
            if held != user.password or until < time.monotonic():
                await self._check_password(request, key, user.password, secret)
                self._remembered[key, digest] = (user.password, time.monotonic() + REMEMBERED)
        if user.suspended:
            _error(403, "suspended", "this account is suspended")
        return key

    async def _check_password(
        self, request: web.Request, key: str | None, stored: str | None, secret: str
    ) -> None:
        """Checks a password as `login` does, counted against the same rates
        (an unknown account: a hash of nothing, the address's rate only)."""
        ip = request.remote or "?"
        try:
            self.policy.check_login(ip, key)
        except NexusError as err:
            retry = str(err.extra.get("retry_after", 1))
            _error(429, err.code, err.message, **{"Retry-After": retry})
        if not await self.hashing.verify(stored, secret):
            self.policy.login_failed(ip, key)
            _unauthorized("auth_failed")
        now = time.monotonic()
        if len(self._remembered) > 10_000:  # bounded: the stale go first
            for entry in [k for k, (_, until) in self._remembered.items() if until < now]:
                del self._remembered[entry]


def _basic(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        _unauthorized()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        _unauthorized()
    name, colon, secret = decoded.partition(":")
    if not colon or not name.isascii():
        _unauthorized()
    return name, secret


def _unauthorized(code: str = "auth_required") -> NoReturn:
    message = "log in: Basic credentials, with a login token or the password"
    _error(401, code, message, **{"WWW-Authenticate": REALM})


def _error(status: int, code: str, message: str, **headers: str) -> NoReturn:
    """Ends a request with the protocol's error form, `{"error": {"code", "message"}}`."""
    response = web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )
    raise _Answered(response)


class _Answered(Exception):
    """A request answered early (a refusal); `FileRoutes` sends the response."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def link(file: StoredFile) -> str:
    """A file's path on the web port."""
    return f"/files/{file.id}/{quote(file.name, safe='')}"


class FileRoutes:
    """The endpoints, added to the web port's aiohttp application."""

    def __init__(self, shelf: Shelf, credentials: Credentials) -> None:
        self.shelf = shelf
        self.credentials = credentials

    def add_to(self, http: Http) -> None:
        http.route("POST", "/files", self._answering(self.upload))
        http.route("GET", "/files/{id}/thumb", self._answering(self.thumb))
        http.route("GET", "/files/{id}/{name}", self._answering(self.download))

    @staticmethod
    def _answering(handler: Any) -> Any:
        async def answer(request: web.Request) -> web.StreamResponse:
            try:
                response: web.StreamResponse = await handler(request)
            except _Answered as answered:
                return answered.response
            return response

        return answer

    async def upload(self, request: web.Request) -> web.Response:
        key = await self.credentials.user(request)
        name = _filename(request.headers.get("Content-Disposition"))
        chunks = request.content.iter_any()  # as the socket gives them: no joins
        try:
            file = await self.shelf.receive(key, name, chunks, request.content_length)
        except TooLarge:
            limit = self.shelf.max_upload
            _error(413, "too_large", f"a file may have at most {limit} bytes")
        except QuotaExceeded:
            _error(413, "quota_exceeded", f"your files may take at most {self.shelf.quota} bytes")
        except (StoreError, OSError):  # the store refuses writes; the disk is full
            _error(503, "internal", "the server cannot store files just now")
        path = link(file)
        return web.json_response(
            {**file.attachment(), "url": path}, status=201, headers={"Location": path}
        )

    async def download(self, request: web.Request) -> web.StreamResponse:
        file = await self._readable(request)
        if request.match_info["name"] != file.name:
            _error(404, "no_such_file", "no such file")
        disposition = "inline" if inline(file.kind) else "attachment"
        return web.FileResponse(
            self.shelf.blobs.path(file.sha),
            headers={
                "Content-Type": file.kind,
                "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(file.name)}",
                "Content-Security-Policy": FILE_CSP,
                "Cache-Control": "private, no-cache",
            },
        )

    async def thumb(self, request: web.Request) -> web.StreamResponse:
        file = await self._readable(request)
        path = self.shelf.blobs.thumb_path(file.sha)
        if file.width is None or not path.exists():
            _error(404, "no_such_file", "this file has no thumbnail")
        with path.open("rb") as head:
            kind = "image/png" if head.read(4) == b"\x89PNG" else "image/jpeg"
        return web.FileResponse(
            path,
            headers={
                "Content-Type": kind,
                "Content-Security-Policy": FILE_CSP,
                "Cache-Control": "private, no-cache",
            },
        )

    async def _readable(self, request: web.Request) -> StoredFile:
        """The file a GET names, if the requester may have it: 404 for no such
        file, 403 for one they may not read."""
        key = await self.credentials.user(request)
        model = self.shelf.store.model
        file = model.files.get(request.match_info["id"])
        if file is None:
            _error(404, "no_such_file", "no such file")
        if not model.may_download(key, file):
            _error(403, "not_allowed", "only those who can read a message carrying it may")
        return file


def _filename(header: str | None) -> str:
    """The name a `Content-Disposition` gives (`filename*` first), cleaned."""
    if not header:
        return clean_name(None)
    with warnings.catch_warnings():  # a malformed parameter is dropped: "file"
        warnings.simplefilter("ignore")
        _, params = parse_content_disposition(header)
    return clean_name(content_disposition_filename(params, "filename"))
