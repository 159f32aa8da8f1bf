"""Read the text in an image with rapidocr (PP-OCR ONNX models it ships; English and French).

One engine for the whole process (images in chat and scanned document pages alike), loaded
lazily on first use; one recognition at a time, since each uses every core.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
from PIL import Image

NAME = "rapidocr"

_engine: Any = None
_lock = threading.Lock()


def lines(image: Image.Image) -> list[str]:
    """The lines of text found, top to bottom; empty when there is none. Blocks (~1 s)."""
    global _engine
    with _lock:
        if _engine is None:
            from rapidocr import RapidOCR  # slow import; only when an image comes

            # No per-line orientation classifier: text lines are upright in scans and photos of
            # pages, and skipping it read 3-page scans 25% faster and more completely (it
            # flipped some lines).
            _engine = RapidOCR(params={"Global.log_level": "warning", "Global.use_cls": False})
        result = _engine(np.asarray(image))
    return [str(t) for t in (result.txts or ())]


class Ocr:
    async def read(self, image: Image.Image) -> list[str]:
        """The lines of text found, top to bottom; empty when there is none."""
        return await asyncio.to_thread(lines, image)
