"""Decoding: each accepted format, GIF's first frame, and the limits checked before decoding."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from iaforall.core.types import ChatRequest, ModelId
from iaforall.settings import ImageSettings
from iaforall.vision import ImageReader, read_images
from iaforall.vision.decode import data_url_bytes, decode
from iaforall.vision.errors import ImageRefused
from tests.vision.images import data_url


def encoded(fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_accepted_formats(fmt: str) -> None:
    image = decode(encoded(fmt), max_pixels=10_000, param="p")
    assert image.size == (40, 30) and image.mode == "RGB"


def test_gif_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in ("blue", "yellow")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    image = decode(out.getvalue(), max_pixels=10_000, param="p")
    assert image.getpixel((0, 0))[2] > 200  # blue: the first frame


def test_other_formats_refused() -> None:
    with pytest.raises(ImageRefused, match="not a PNG"):
        decode(encoded("BMP"), max_pixels=10_000, param="p")


def test_byte_limit_before_base64_decoding() -> None:
    url = data_url(b"\x00" * 3000)
    with pytest.raises(ImageRefused) as refused:
        data_url_bytes(url, max_bytes=1000, param="p")
    assert refused.value.code == "image_too_large"
    assert data_url_bytes(url, max_bytes=3000, param="p") == b"\x00" * 3000


async def test_too_many_images() -> None:
    part = {"type": "image_url", "image_url": {"url": data_url(encoded("PNG"))}}
    chat = ChatRequest(ModelId("m"), ({"role": "user", "content": [part] * 3},))
    with pytest.raises(ImageRefused) as refused:
        await read_images(chat, ImageReader(ImageSettings(image_max_count=2)))
    assert refused.value.code == "too_many_images"


_MEASURE = """
import resource
from iaforall.vision.decode import decode
from iaforall.vision.errors import ImageRefused
from tests.vision.images import bomb_png, huge_header_png
files = [huge_header_png(), bomb_png()]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for data in files:
    try:
        decode(data, max_pixels=25_000_000, param="p")
    except ImageRefused:
        pass
    else:
        raise SystemExit("not refused")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_huge_images_are_refused_with_bounded_memory() -> None:
    """50 MP and 36 MP images decoded would take 50-150 MB; refused, they take almost none."""
    root = Path(__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 10_000  # kB of peak memory added by the two refusals
