"""The image worker's protocol: one JSON object a line, both ways.

To the worker: a drawing `{"id", "prompt", "width", "height", "steps", "seed", "format",
"quality", "previews"}`, or `{"cancel": id}`. From it: `{"ready": true}` once loaded, then per
drawing `{"id", "step", "steps"}` after each step, `{"id", "preview": b64, "index"}` when asked,
and one last line: `{"id", "image": b64}`, `{"id", "cancelled": true}` or `{"id", "error"}`.
Its stdin closing ends it (it never outlives the server)."""

from __future__ import annotations

import io
from typing import Literal

from PIL import Image

from iaforall.engines.images.drawing import Pixels

Format = Literal["png", "jpeg", "webp"]
FORMATS: tuple[Format, ...] = ("png", "jpeg", "webp")
MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def encoded(pixels: Pixels, fmt: str, quality: int) -> bytes:
    """The picture as a file in `fmt` (`quality` 0-100 for JPEG and WebP)."""
    out = io.BytesIO()
    image = Image.fromarray(pixels, "RGB")
    if fmt == "png":
        image.save(out, "PNG")
    elif fmt == "jpeg":
        image.save(out, "JPEG", quality=quality)
    else:
        image.save(out, "WEBP", quality=quality)
    return out.getvalue()
