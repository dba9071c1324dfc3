"""Pictures in the terminal: a thumbnail's bytes as rows of prompt_toolkit fragments.

Two ways, chosen by what the terminal is:

- kitty's graphics protocol, where the terminal says it is kitty: the PNG
  goes to the terminal in an APC escape (base64, in chunks of 4096) that
  places it over a block of cells. The escape is a zero-width fragment, so
  prompt_toolkit counts only the blank cells it covers.
- anywhere else, 24-bit colour half blocks: each cell is `▀`, its
  foreground the upper pixel and its background the lower one, so a cell
  (about twice as tall as wide) shows two square pixels.

Pure functions of bytes and sizes: no terminal is needed to test them.
"""

from __future__ import annotations

import base64
import io
import math
import os
import zlib
from collections.abc import Iterator, Mapping

from PIL import Image
from prompt_toolkit.formatted_text import StyleAndTextTuples as Fragments

UPPER_HALF = "▀"
CHUNK = 4096  # base64 characters in one kitty escape, as its protocol requires
ZERO_WIDTH = "[ZeroWidthEscape]"


class NotAnImage(ValueError):
    """Bytes Pillow cannot read as a picture."""


def kitty_terminal(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the terminal speaks kitty's graphics protocol. Not inside tmux or
    screen, which pass the escape on to no one, whatever the outer terminal is."""
    env = os.environ if environ is None else environ
    kitty = "KITTY_WINDOW_ID" in env or env.get("TERM") == "xterm-kitty"
    return kitty and "TMUX" not in env and not env.get("TERM", "").startswith("screen")


def true_colour(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the terminal says it shows 24-bit colour (`COLORTERM`) and no one asked
    for none (`NO_COLOR`); without it, half blocks come out in the nearest of 256."""
    env = os.environ if environ is None else environ
    wanted = env.get("COLORTERM", "").lower() in ("truecolor", "24bit")
    return wanted and "NO_COLOR" not in env


def drawable(environ: Mapping[str, str] | None = None) -> bool:
    """Whether pictures can be shown: by kitty, or in colours (half blocks without
    colour are blank cells, under `NO_COLOR`)."""
    env = os.environ if environ is None else environ
    return kitty_terminal(env) or "NO_COLOR" not in env


def fit(width: int, height: int, columns: int, rows: int) -> tuple[int, int]:
    """The cells (columns, rows) a `width` x `height` picture takes at most `columns`
    x `rows`, its aspect kept: a cell is two pixels tall and one wide. Never enlarged."""
    scale = min(1.0, columns / width, 2 * rows / height)
    return max(1, round(width * scale)), max(1, math.ceil(height * scale / 2))


def _open(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise NotAnImage(str(exc)) from None
    return image


def _rgb(image: Image.Image) -> Image.Image:
    """On a black background, so transparency shows as the terminal's usual dark."""
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        backdrop = Image.new("RGBA", image.size, (0, 0, 0, 255))
        return Image.alpha_composite(backdrop, image).convert("RGB")
    return image.convert("RGB")


def _hex(pixel: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*pixel)


def half_blocks(data: bytes, columns: int, rows: int) -> list[Fragments]:
    """The picture in `data` as rows of `▀` cells, at most `columns` x `rows`."""
    image = _rgb(_open(data))
    cells = fit(image.width, image.height, columns, rows)
    size = (cells[0], 2 * cells[1])
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    pixels = image.load()
    assert pixels is not None
    out: list[Fragments] = []
    for row in range(cells[1]):
        line: Fragments = []
        for x in range(cells[0]):
            upper, lower = pixels[x, 2 * row], pixels[x, 2 * row + 1]
            style = f"fg:{_hex(upper)} bg:{_hex(lower)}"  # type: ignore[arg-type]
            if line and line[-1][0] == style:
                line[-1] = (style, line[-1][1] + UPPER_HALF)
            else:
                line.append((style, UPPER_HALF))
        out.append(line)
    return out


def _png(image: Image.Image, data: bytes) -> bytes:
    """`data` itself when it is a PNG (what kitty's f=100 takes), else re-encoded."""
    if image.format == "PNG":
        return data
    out = io.BytesIO()
    _rgb(image).save(out, "PNG")
    return out.getvalue()


def kitty_chunks(png: bytes, columns: int, rows: int, image_id: int) -> Iterator[str]:
    """The escapes that send `png` and place it over `columns` x `rows` cells: the
    first carries the keys, each carries at most CHUNK base64 characters, and all
    but the last say more follows (m=1). q=2: no reply comes back as typed keys;
    C=1: the cursor stays, for the blank cells drawn after it; `image_id` with p=1
    replaces the picture's earlier placement when it is drawn again."""
    encoded = base64.standard_b64encode(png).decode("ascii")
    pieces = [encoded[i : i + CHUNK] for i in range(0, len(encoded), CHUNK)] or [""]
    for index, piece in enumerate(pieces):
        more = int(index < len(pieces) - 1)
        keys = f"a=T,f=100,q=2,C=1,i={image_id},p=1,c={columns},r={rows},m={more}"
        yield f"\x1b_G{keys if index == 0 else f'm={more}'};{piece}\x1b\\"


def kitty_rows(data: bytes, columns: int, rows: int, key: str) -> list[Fragments]:
    """The picture as kitty draws it: its escape (zero width) then the blank cells it
    covers; `key` (the file's id) names it to the terminal."""
    image = _open(data)
    cells = fit(image.width, image.height, columns, rows)
    image_id = zlib.crc32(key.encode()) or 1
    escape = "".join(kitty_chunks(_png(image, data), *cells, image_id))
    blank = " " * cells[0]
    out: list[Fragments] = [[(ZERO_WIDTH, escape), ("", blank)]]
    return out + [[("", blank)] for _ in range(cells[1] - 1)]


def preview(data: bytes, columns: int, rows: int, key: str, *, kitty: bool) -> list[Fragments]:
    """The picture's rows, by kitty's protocol or in half blocks; none if it is no picture."""
    try:
        if kitty:
            return kitty_rows(data, columns, rows, key)
        return half_blocks(data, columns, rows)
    except NotAnImage:
        return []
