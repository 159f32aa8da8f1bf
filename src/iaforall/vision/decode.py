"""Bytes -> a decoded RGB image, within a byte and a pixel limit and with bounded memory.

The dimensions are read from the header before any pixel is decoded, so a small file that
claims 50 megapixels (a decompression bomb) is refused without allocating them.
"""

from __future__ import annotations

import base64
import binascii
import io

from PIL import Image, UnidentifiedImageError

from iaforall.vision.errors import ImageRefused

FORMATS = ("PNG", "JPEG", "WEBP", "GIF")


def data_url_bytes(url: str, *, max_bytes: int, param: str) -> bytes:
    """The bytes of a base64 `data:` URL, refused before decoding when too large. Read with
    string methods: the URL is the client's, megabytes long, and must cost linear time."""
    head, comma, payload = url.partition(",")
    head = head.lower()
    if not comma or not head.startswith("data:") or not head.endswith(";base64"):
        raise ImageRefused(
            "The image data URL is malformed: expected 'data:image/png;base64,…'.", param=param
        )
    mime = head[len("data:") :].split(";", 1)[0].strip()
    if not mime.startswith("image/"):
        raise ImageRefused(
            f"The data URL has type '{mime[:100] or 'none'}', not an image type.", param=param
        )
    if len(payload) * 3 // 4 > max_bytes + 2:
        raise too_many_bytes(max_bytes, param)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRefused("The image data URL is not valid base64.", param=param) from None
    if len(data) > max_bytes:
        raise too_many_bytes(max_bytes, param)
    return data


def too_many_bytes(max_bytes: int, param: str) -> ImageRefused:
    return ImageRefused(
        f"The image is larger than the {max_bytes / 1_000_000:g} MB allowed.",
        param=param,
        code="image_too_large",
    )


def decode(data: bytes, *, max_pixels: int, param: str) -> Image.Image:
    """A PNG, JPEG, WebP or GIF (its first frame) as an RGB image."""
    # Pillow's own guard, process-wide; ours below is stricter and runs first.
    Image.MAX_IMAGE_PIXELS = max(max_pixels, Image.MAX_IMAGE_PIXELS or 0)
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRefused(
                    f"The image is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
                    f"at most {max_pixels / 1e6:g} megapixels are allowed.",
                    param=param,
                    code="image_too_large",
                )
            image.seek(0)
            image.load()
            return image.convert("RGB")
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused(
            "The image decompresses to far more pixels than allowed (a decompression bomb).",
            param=param,
            code="image_too_large",
        ) from None
    except UnidentifiedImageError:
        raise ImageRefused(
            "The file is not a PNG, JPEG, WebP or GIF image we can read.", param=param
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRefused(
            f"The image is corrupt or truncated and cannot be decoded ({exc}).", param=param
        ) from None
