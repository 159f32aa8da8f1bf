"""The bounds every document is read within, from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from iaforall.settings import KnowledgeSettings

MB = 1_000_000


@dataclass(frozen=True)
class DocumentLimits:
    max_bytes: int = 50 * MB
    max_pages: int = 2000
    max_ocr_pages: int = 200
    max_chars: int = 5_000_000
    max_unzipped_bytes: int = 300 * MB
    max_zip_ratio: int = 200
    max_cells: int = 2_000_000  # cell and row elements read per workbook, empty or not

    @classmethod
    def from_settings(cls, settings: KnowledgeSettings) -> DocumentLimits:
        return cls(
            max_bytes=settings.document_max_mb * MB,
            max_pages=settings.document_max_pages,
            max_ocr_pages=settings.document_max_ocr_pages,
            max_chars=settings.document_max_chars,
            max_unzipped_bytes=settings.document_max_unzipped_mb * MB,
            max_zip_ratio=settings.document_max_zip_ratio,
        )
