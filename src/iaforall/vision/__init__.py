"""Images in chat: `image_url` parts are checked, decoded within limits, and (for a text-only
model) read with OCR into clearly labelled text parts, in one place before the dispatcher."""

from iaforall.vision.parts import ImageReader, data_url, has_images, read_images

__all__ = ["ImageReader", "data_url", "has_images", "read_images"]
