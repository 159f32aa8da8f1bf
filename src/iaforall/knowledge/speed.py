"""How fast documents are parsed, for the benchmark: pages (or slides, sheets) per second."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from iaforall.knowledge.limits import DocumentLimits
from iaforall.knowledge.ocr_pages import ReadImage
from iaforall.knowledge.parse import parse_document


@dataclass(frozen=True)
class ParsingSpeed:
    documents: int
    pages: int  # a document without pages (DOCX, text) counts as one
    ocr_pages: int
    characters: int
    seconds: float

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds else float("inf")


def measure_parsing(
    paths: Sequence[Path],
    *,
    limits: DocumentLimits | None = None,
    read_image: ReadImage | None = None,
) -> ParsingSpeed:
    """Parse each file once (named as it is on disk) and time the whole."""
    pages = ocr_pages = characters = 0
    started = time.perf_counter()
    for path in paths:
        document = parse_document(path, path.name, limits, read_image=read_image)
        pages += document.pages or 1
        ocr_pages += document.ocr_pages
        characters += len(document.text)
    return ParsingSpeed(len(paths), pages, ocr_pages, characters, time.perf_counter() - started)
