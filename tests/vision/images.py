"""Images the tests make themselves: text rendered with a real font, and broken files."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
)


def font(size: int = 32) -> ImageFont.FreeTypeFont:
    for path in FONTS:
        if path.exists():
            return ImageFont.truetype(str(path), size)
    raise RuntimeError(f"no TrueType font found for the image tests (looked for {FONTS})")


def text_png(*lines: str) -> bytes:
    image = Image.new("RGB", (900, 40 + 70 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((20, 20 + 70 * i), line, font=font(), fill="black")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int, height: int, pixels: bytes) -> bytes:
    """A grey PNG whose header claims width x height, around the given compressed rows."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", pixels)
        + _chunk(b"IEND", b"")
    )


def huge_header_png() -> bytes:
    """A few hundred bytes that claim 10000 x 5000 = 50 megapixels."""
    return png(10_000, 5_000, zlib.compress(b"\x00" * 10_001))


def bomb_png() -> bytes:
    """A real, complete PNG of 6000 x 6000 zero pixels (36 MP) in ~36 kB: a decompression bomb."""
    row = b"\x00" * 6001
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(6000)) + compressor.flush()
    return png(6000, 6000, body)
