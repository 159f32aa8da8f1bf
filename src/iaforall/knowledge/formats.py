"""What a document really is, from its content, checked against its extension.

The content decides: magic bytes for PDF, the members of a zip for Office files, and otherwise
text that decodes. The extension only chooses among the text formats (Markdown, CSV, HTML, plain
text) and must not contradict the content: a `.pdf` that is a zip is refused, not guessed at.
"""

from __future__ import annotations

import zipfile
from enum import StrEnum
from pathlib import Path, PurePath

from iaforall.knowledge.errors import UnreadableDocument, UnsupportedDocument
from iaforall.knowledge.zipguard import check_directory


class Format(StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    PPTX = "pptx"
    XLSX = "xlsx"
    HTML = "html"
    MARKDOWN = "markdown"
    CSV = "csv"
    TEXT = "text"


TEXT_FORMATS = frozenset({Format.HTML, Format.MARKDOWN, Format.CSV, Format.TEXT})
OFFICE_FORMATS = {  # the part every such zip has
    Format.DOCX: "word/document.xml",
    Format.PPTX: "ppt/presentation.xml",
    Format.XLSX: "xl/workbook.xml",
}
EXTENSIONS = {
    ".pdf": Format.PDF,
    ".docx": Format.DOCX,
    ".pptx": Format.PPTX,
    ".xlsx": Format.XLSX,
    ".html": Format.HTML,
    ".htm": Format.HTML,
    ".xhtml": Format.HTML,
    ".md": Format.MARKDOWN,
    ".markdown": Format.MARKDOWN,
    ".csv": Format.CSV,
    ".txt": Format.TEXT,
    ".text": Format.TEXT,
}
SUPPORTED = "PDF, DOCX, PPTX, XLSX, HTML, Markdown, CSV or plain text"

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .doc/.xls/.ppt, and password-protected .docx/.xlsx
_BINARY_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"RIFF": "a RIFF file (WebP image or WAV audio)",
    b"\x1f\x8b": "a gzip archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"Rar!": "a RAR archive",
    b"\x7fELF": "a program",
    b"MZ": "a Windows program",
    b"ID3": "MP3 audio",
    b"OggS": "Ogg audio",
    b"fLaC": "FLAC audio",
}
_PDF_MAGIC_WITHIN = 1024  # bytes: readers accept "%PDF-" after some leading junk
_TEXT_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body")


def may_need_ocr(path: Path) -> bool:
    """Whether reading the file may run OCR: only a PDF's scanned pages do, and a PDF is known
    by its first bytes, as `sniff` knows it (a file that cannot be opened fails when read)."""
    try:
        with path.open("rb") as file:
            return _is_pdf(file.read(_PDF_MAGIC_WITHIN))
    except OSError:
        return False


def _is_pdf(head: bytes) -> bool:
    return b"%PDF-" in head[:_PDF_MAGIC_WITHIN]


def extension_format(filename: str) -> Format | None:
    return EXTENSIONS.get(PurePath(filename).suffix.lower())


def sniff(path: Path, filename: str) -> Format:
    """The document's format; refused (415) when unsupported or when the extension lies."""
    with path.open("rb") as file:
        head = file.read(8192)
    claimed = extension_format(filename)
    actual = _content_format(path, head, claimed)
    if claimed is None or claimed == actual:
        return actual
    if claimed in TEXT_FORMATS and actual in TEXT_FORMATS:
        return claimed  # text is text: the extension says how to read it
    raise UnsupportedDocument(
        f"'{filename}' is named like {_describe(claimed)} but its content is "
        f"{_describe(actual)}. Rename it to match what it is, or upload the right file.",
        code="extension_mismatch",
    )


def _content_format(path: Path, head: bytes, claimed: Format | None) -> Format:
    if not head:
        raise UnreadableDocument("The document is empty: no text found.", code="empty_document")
    if _is_pdf(head):
        return Format.PDF
    if head.startswith(b"PK\x03\x04"):
        return _office_format(path)
    if head.startswith(_OLE2):
        if claimed in OFFICE_FORMATS:
            raise UnreadableDocument(
                "This Office document is password-protected (encrypted); remove the password "
                "and upload it again.",
                code="encrypted_document",
            )
        raise UnsupportedDocument(
            "This is an old Office file (.doc, .xls or .ppt); save it as .docx, .xlsx or .pptx "
            "and upload that.",
            code="unsupported_document_type",
        )
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise UnsupportedDocument(
                f"The file is {what}, not a document. Documents can be {SUPPORTED}.",
            )
    if _looks_binary(head):
        raise UnsupportedDocument(
            f"The file is binary data of a type we do not read. Documents can be {SUPPORTED}.",
        )
    lowered = head.lstrip()[:1024].lower()
    if claimed is None and any(marker in lowered for marker in _HTML_MARKERS):
        return Format.HTML
    return claimed if claimed in TEXT_FORMATS else Format.TEXT


def _office_format(path: Path) -> Format:
    check_directory(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError) as exc:
        raise UnreadableDocument(
            f"The file is a damaged or truncated zip (as DOCX, PPTX and XLSX are): {exc}.",
            code="corrupt_document",
        ) from None
    for format, part in OFFICE_FORMATS.items():
        if part in names:
            return format
    raise UnsupportedDocument(
        f"The file is a zip archive but not a DOCX, PPTX or XLSX document. Documents can be "
        f"{SUPPORTED}.",
    )


def _looks_binary(head: bytes) -> bool:
    """NUL bytes mean binary, unless the text is UTF-16 or UTF-32 (which are full of them)."""
    if head.startswith(_TEXT_BOMS):
        return False
    if b"\x00" not in head:
        return False
    # UTF-16 without a BOM: every other byte is NUL in mostly-ASCII text; the decoder decides.
    even, odd = head[0::2], head[1::2]
    return not (even.count(0) > len(even) * 0.4 or odd.count(0) > len(odd) * 0.4)


def _describe(format: Format) -> str:
    return {
        Format.PDF: "a PDF",
        Format.DOCX: "a Word document (DOCX)",
        Format.PPTX: "a PowerPoint presentation (PPTX)",
        Format.XLSX: "an Excel workbook (XLSX)",
        Format.HTML: "an HTML page",
        Format.MARKDOWN: "Markdown text",
        Format.CSV: "a CSV table",
        Format.TEXT: "text",
    }[format]
