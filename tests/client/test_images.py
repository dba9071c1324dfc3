"""Thumbnails as terminal cells: half blocks and kitty's escapes, without a terminal."""

from __future__ import annotations

import base64
import io
import random
import re

import pytest
from PIL import Image

from nexus.client import images

PIXELS = [  # a 2x4 picture, rows top to bottom
    [(255, 0, 0), (0, 255, 0)],
    [(0, 0, 255), (255, 255, 0)],
    [(1, 2, 3), (250, 251, 252)],
    [(16, 32, 64), (128, 64, 32)],
]


def picture(pixels: list[list[tuple[int, int, int]]], fmt: str = "PNG") -> bytes:
    image = Image.new("RGB", (len(pixels[0]), len(pixels)))
    for y, row in enumerate(pixels):
        for x, pixel in enumerate(row):
            image.putpixel((x, y), pixel)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def hex_of(pixel: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*pixel)


def test_each_cell_is_its_upper_pixel_on_its_lower_one():
    rows = images.half_blocks(picture(PIXELS), 80, 8)
    assert len(rows) == 2
    for y, row in enumerate(rows):
        assert "".join(text for _, text in row) == "▀▀"
        styles = [style for style, text in row for _ in text]
        for x, style in enumerate(styles):
            upper, lower = PIXELS[2 * y][x], PIXELS[2 * y + 1][x]
            assert style == f"fg:{hex_of(upper)} bg:{hex_of(lower)}"


def test_cells_of_one_colour_are_one_fragment():
    red = [[(200, 0, 0)] * 5] * 2
    assert images.half_blocks(picture(red), 80, 8) == [[("fg:#c80000 bg:#c80000", "▀" * 5)]]


def test_transparency_shows_as_black():
    image = Image.new("RGBA", (1, 2), (255, 255, 255, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    assert images.half_blocks(out.getvalue(), 10, 10) == [[("fg:#000000 bg:#000000", "▀")]]


@pytest.mark.parametrize(
    ("size", "box", "cells"),
    [
        ((2, 4), (80, 8), (2, 2)),  # small: never enlarged
        ((320, 40), (40, 8), (40, 3)),  # wide: the columns bound it
        ((320, 320), (80, 8), (16, 8)),  # square: the rows bound it, twice as many columns
        ((320, 160), (40, 8), (32, 8)),
        ((1, 3), (80, 8), (1, 2)),  # an odd height takes a last half-filled row
        ((1000, 1), (10, 8), (10, 1)),  # never less than one cell
    ],
)
def test_fit_keeps_the_aspect_in_the_box(size, box, cells):
    assert images.fit(*size, *box) == cells


def test_a_big_picture_is_scaled_into_the_box():
    big = Image.new("RGB", (320, 240), (10, 20, 30))
    out = io.BytesIO()
    big.save(out, "JPEG")
    rows = images.half_blocks(out.getvalue(), 40, 8)
    assert len(rows) <= 8
    assert all(sum(len(text) for _, text in row) <= 40 for row in rows)
    width = sum(len(text) for _, text in rows[0])
    assert abs(width / (2 * len(rows)) - 320 / 240) < 0.2  # the aspect, in pixels


def test_kitty_chunks_decode_back_to_the_png():
    noise = Image.frombytes("RGB", (64, 64), random.Random(1).randbytes(64 * 64 * 3))
    data = io.BytesIO()
    noise.save(data, "PNG")
    png = data.getvalue()
    chunks = list(images.kitty_chunks(png, 10, 5, 7))
    assert len(chunks) > 1
    parsed = [re.fullmatch(r"\x1b_G([^;]*);([A-Za-z0-9+/=]*)\x1b\\", c) for c in chunks]
    assert all(parsed)
    keys = [dict(k.split("=") for k in m.group(1).split(",")) for m in parsed if m]
    assert keys[0] | {"m": "1"} == keys[0]
    wanted = {"a": "T", "f": "100", "c": "10", "r": "5", "q": "2", "i": "7"}
    assert wanted.items() <= keys[0].items()
    assert [k["m"] for k in keys] == ["1"] * (len(keys) - 1) + ["0"]
    assert all(set(k) == {"m"} for k in keys[1:])
    payloads = [m.group(2) for m in parsed if m]
    assert all(len(p) <= 4096 for p in payloads) and all(len(p) == 4096 for p in payloads[:-1])
    assert base64.b64decode("".join(payloads)) == png


def test_kitty_rows_are_the_escape_then_the_cells_it_covers():
    rows = images.kitty_rows(picture(PIXELS), 80, 8, "file-id")
    assert len(rows) == 2
    (escape_style, escape), (_, blank) = rows[0]
    assert escape_style == "[ZeroWidthEscape]" and escape.startswith("\x1b_G")
    assert blank == "  " and rows[1] == [("", "  ")]


def test_a_jpeg_goes_to_kitty_as_png():
    jpeg = picture(PIXELS, "JPEG")
    rows = images.kitty_rows(jpeg, 80, 8, "x")
    payload = "".join(re.findall(r";([A-Za-z0-9+/=]*)\x1b\\", rows[0][0][1]))
    assert base64.b64decode(payload).startswith(b"\x89PNG")


def test_bytes_that_are_no_picture_draw_nothing():
    assert images.preview(b"not a picture", 40, 8, "x", kitty=False) == []
    assert images.preview(b"not a picture", 40, 8, "x", kitty=True) == []


@pytest.mark.parametrize(
    ("env", "kitty"),
    [
        ({"KITTY_WINDOW_ID": "1", "TERM": "xterm-kitty"}, True),
        ({"TERM": "xterm-kitty"}, True),
        ({"KITTY_WINDOW_ID": "1", "TERM": "xterm-256color"}, True),
        ({"TERM": "xterm-256color"}, False),
        ({"KITTY_WINDOW_ID": "1", "TERM": "tmux-256color", "TMUX": "/tmp/x"}, False),
        ({"KITTY_WINDOW_ID": "1", "TERM": "screen"}, False),
    ],
)
def test_kitty_is_the_terminal_that_says_so(env, kitty):
    assert images.kitty_terminal(env) is kitty


def test_true_colour_is_what_colorterm_says():
    assert images.true_colour({"COLORTERM": "truecolor"})
    assert images.true_colour({"COLORTERM": "24bit"})
    assert not images.true_colour({})
    assert not images.true_colour({"COLORTERM": "truecolor", "NO_COLOR": "1"})


def test_pictures_need_colours_or_kitty():
    assert images.drawable({"TERM": "xterm-256color"})
    assert not images.drawable({"TERM": "xterm-256color", "NO_COLOR": "1"})
    assert images.drawable({"TERM": "xterm-kitty", "NO_COLOR": "1"})
