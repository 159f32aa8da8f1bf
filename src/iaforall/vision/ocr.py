"""Read the text in an image with rapidocr (PP-OCR ONNX models it ships; English and French).

The engine is loaded once, lazily, on first use, and every call runs off the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
from PIL import Image

NAME = "rapidocr"


class Ocr:
    def __init__(self) -> None:
        self._engine: Any = None
        self._lock = threading.Lock()  # one recognition at a time: 2 cores, ~1 s each

    def _read(self, image: Image.Image) -> list[str]:
        with self._lock:
            if self._engine is None:
                from rapidocr import RapidOCR  # slow import; only when an image comes

                self._engine = RapidOCR(params={"Global.log_level": "warning"})
            result = self._engine(np.asarray(image))
        return [str(t) for t in (result.txts or ())]

    async def read(self, image: Image.Image) -> list[str]:
        """The lines of text found, top to bottom; empty when there is none."""
        return await asyncio.to_thread(self._read, image)
