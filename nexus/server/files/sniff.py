"""An upload's type, from its first bytes alone.

Never from its name or from what the uploader's client claims: a file
named `cat.png` that is HTML is HTML, and is served as an attachment
(routes.py), so no upload can run script in the server's origin.
"""

from __future__ import annotations

import re

OCTETS = "application/octet-stream"
TEXT = "text/plain; charset=utf-8"

# Signatures at the start of a file (WHATWG MIME Sniffing, and the formats' own specs).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"\x1a\x45\xdf\xa3", "video/webm"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"ID3", "audio/mpeg"),
)
# Where a document's start says it is HTML, whatever follows.
_HTML = re.compile(
    rb"<(!doctype\s+html|html|head|body|script|iframe|title|style|div|p|a|img|table|"
    rb"font|br|b|h1|meta|link|form|object|embed|svg)[\s>/]",
    re.IGNORECASE,
)
_LEAD = re.compile(  # what may come before a document's first element
    rb"(\s|<!--.*?-->|<\?xml[^>]*>|<!doctype\s+svg[^>]*>)*", re.DOTALL | re.IGNORECASE
)

# Served inline (shown in the browser): images that cannot carry script,
# and sound and video. Never SVG, HTML or text.
INLINE = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def inline(kind: str) -> bool:
    """Whether a file of type `kind` is shown in the browser rather than saved."""
    return kind in INLINE or kind.startswith(("audio/", "video/"))


def sniff(head: bytes) -> str:
    """The MIME type of a file that starts with `head`."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}[head[8:12]]
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "application/x-tar"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "audio/mpeg"  # an MPEG audio frame's sync bits, layer set
    return _markup_or_text(head)


def _markup_or_text(head: bytes) -> str:
    if b"\x00" in head or not _utf8(head):
        return OCTETS
    body = head.removeprefix(b"\xef\xbb\xbf")
    start = _LEAD.match(body)
    rest = body[start.end() if start else 0 :]
    if re.match(rb"<svg[\s>/]", rest, re.IGNORECASE):
        return "image/svg+xml"
    if _HTML.match(rest):
        return "text/html"
    return TEXT


def _utf8(head: bytes) -> bool:
    """Whether `head` is UTF-8, allowing a character cut at its end."""
    for cut in range(4):
        try:
            head[: len(head) - cut].decode()
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:
                return False
            continue
        return True
    return False
