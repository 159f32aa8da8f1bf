"""Why a document was refused, written for the person who uploaded it.

Each refusal carries a stable `code` and the HTTP status an API adapter should answer with:
413 for what is too large, 415 for what is not a document type we read, 422 for a document of a
known type that cannot be read (password, corruption, no text, unknown text encoding).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from iaforall.core.errors import IAForAllError, PayloadTooLarge

if TYPE_CHECKING:
    from iaforall.knowledge.limits import DocumentLimits


class DocumentRefused(IAForAllError):
    """Base of every refusal of an uploaded document."""

    status = 400
    code = "invalid_document"
    type = "invalid_request_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = "file"):
        super().__init__(message, param=param)
        if code:
            self.code = code


class DocumentTooLarge(DocumentRefused, PayloadTooLarge):
    """Over a size limit: bytes, pages, extracted text, or a zip that inflates too much."""

    status = 413
    code = "document_too_large"


class UnsupportedDocument(DocumentRefused):
    """Not a type we read, or its extension says something else than its content."""

    status = 415
    code = "unsupported_document_type"


class UnreadableDocument(DocumentRefused):
    """A known type whose content cannot be read: encrypted, corrupt, no text, bad encoding."""

    status = 422
    code = "unreadable_document"


def too_much_text(limits: DocumentLimits) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"The document holds more than {limits.max_chars:,} characters of text, the most read "
        f"from one document. Split it into smaller files.",
        code="too_much_text",
    )


def too_slow(seconds: float) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"Reading this document took longer than the {seconds:g} seconds one file is given, so "
        "it was stopped. Split it into smaller files, or save it in a simpler form (a PDF with "
        "a text layer rather than scans, fewer sheets).",
        code="reading_too_long",
    )
