"""One OCR engine for the whole session: it takes a few seconds to load."""

from __future__ import annotations

import pytest

from iaforall.knowledge.ocr_pages import RapidOcrLines


@pytest.fixture(scope="session")
def ocr() -> RapidOcrLines:
    return RapidOcrLines()
