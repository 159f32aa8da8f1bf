"""Why an image was refused, written for the person who sent it (all 400-class)."""

from __future__ import annotations

from iaforall.core.errors import InvalidRequest


class ImageRefused(InvalidRequest):
    """The image is not one we read: not an image, corrupt, too large, or from a refused URL."""

    code = "invalid_image"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message, param=param, code=code)
