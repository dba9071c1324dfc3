"""Thumbnails of uploaded images, made with Pillow in a background thread.

Only JPEG, PNG, WebP and GIF (the first frame), as sniffed: formats
Pillow decodes well and browsers show. An image over MAX_PIXELS is never
decoded (a small file can claim a huge canvas: a decompression bomb). The
EXIF orientation is applied, so a phone's portrait photo stands up, and
nothing of the original's metadata (EXIF with its GPS position, ICC, XMP,
comments) is written to the thumbnail.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from nexus.server.files.background import Background

# Each type drawn, and the one Pillow decoder allowed to read it: a file is
# never handed to a decoder its sniffed type does not name.
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF"}
MAX_PIXELS = 50_000_000
SIZE = (320, 320)  # a thumbnail fits in this, and never grows


@dataclass(frozen=True, slots=True)
class Thumb:
    width: int  # the original's, as it stands once oriented
    height: int


async def thumbnail(background: Background, source: Path, kind: str, target: Path) -> Thumb | None:
    """Writes `source`'s thumbnail to `target` and returns the image's size,
    or None (and writes nothing) when it is not an image of those types,
    is damaged, or is too big to decode."""
    decoder = FORMATS.get(kind)
    if decoder is None:
        return None
    return await background.run(_make, source, decoder, target)


def _make(source: Path, decoder: str, target: Path) -> Thumb | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=[decoder]) as image:
                if image.width * image.height > MAX_PIXELS:
                    return None
                image.seek(0)  # an animation: its first frame
                oriented = ImageOps.exif_transpose(image)
                width, height = oriented.size
                small = _plain(oriented)
                small.thumbnail(SIZE)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning):
        return None  # not decodable as claimed: no thumbnail, never an error
    _write(small, target)
    return Thumb(width, height)


def _plain(image: Image.Image) -> Image.Image:
    """The pixels alone, in a mode JPEG or PNG can hold: a new image, so no
    metadata of the original comes with it."""
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    mode = "RGBA" if transparent else "RGB"
    converted = image.convert(mode)
    plain = Image.new(mode, converted.size)
    plain.paste(converted)
    return plain


def _write(image: Image.Image, target: Path) -> None:
    """PNG when it has transparency, else JPEG; whole or not at all."""
    target.parent.mkdir(mode=0o700, exist_ok=True)
    temporary = target.with_name(target.name + ".part")
    try:
        with temporary.open("wb") as out:
            if image.mode == "RGBA":
                image.save(out, "PNG", optimize=True)
            else:
                image.save(out, "JPEG", quality=85)
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
