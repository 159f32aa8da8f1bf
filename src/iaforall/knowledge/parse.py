"""An uploaded file -> a ParsedDocument, or a clear refusal (see errors.py).

    document = parse_document(path, "notes.pdf", limits, read_image=RapidOcrLines())

Runs synchronously and may take seconds (OCR): call it off the event loop. Memory stays near
the file's size: the size is checked before anything is read, zips are checked for bombs before
they are opened, and pages and characters are counted as they come.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from iaforall.knowledge.document import ParsedDocument, Section, assemble
from iaforall.knowledge.errors import DocumentTooLarge, UnreadableDocument, too_much_text
from iaforall.knowledge.formats import Format, sniff
from iaforall.knowledge.limits import MB, DocumentLimits
from iaforall.knowledge.markdown_sections import by_headings
from iaforall.knowledge.ocr_pages import ReadImage
from iaforall.knowledge.office import html_sections, office_sections
from iaforall.knowledge.pdf import parse_pdf
from iaforall.knowledge.text import decode_text
from iaforall.knowledge.zipguard import check_zip


def parse_document(
    path: Path,
    filename: str,
    limits: DocumentLimits | None = None,
    *,
    read_image: ReadImage | None = None,
) -> ParsedDocument:
    """Sniff, check and read a document. `filename` is the name it was uploaded as (its
    extension is checked against the content). Without `read_image`, scanned PDF pages give no
    text."""
    limits = limits or DocumentLimits()
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise DocumentTooLarge(
            f"The document is {size / MB:.1f} MB; at most {limits.max_bytes / MB:g} MB are "
            f"accepted.",
            code="file_too_large",
        )
    format = sniff(path, filename)
    if format is Format.PDF:
        document = parse_pdf(path, filename, limits, read_image)
    else:
        document = _parse_other(path, filename, format, limits)
    if not document.text.strip():
        raise UnreadableDocument(_no_text(document, read_image), code="no_text_found")
    if len(document.text) > limits.max_chars:
        raise too_much_text(limits)
    return document


def _parse_other(
    path: Path, filename: str, format: Format, limits: DocumentLimits
) -> ParsedDocument:
    if format in (Format.DOCX, Format.PPTX, Format.XLSX):
        check_zip(path, limits)
        sections = office_sections(path, format, limits)
        pages = len(sections) if format is not Format.DOCX else 0
        return assemble(filename, format, sections, pages=pages)
    if path.stat().st_size > limits.max_chars * 8:  # more than markup and UTF-8 could explain
        raise too_much_text(limits)
    text = decode_text(path.read_bytes(), html=format is Format.HTML)
    if len(text) > limits.max_chars * 2:  # markup is dropped below; twice is generous
        raise too_much_text(limits)
    return assemble(filename, format, _TEXT_SPLITTERS[format](text))


def _plain(text: str) -> list[Section]:
    return [Section("", text)]


def _csv(text: str) -> list[Section]:
    """A CSV as one Markdown table (commas, semicolons or tabs, as the file uses)."""
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:20_000], delimiters=",;\t|"
        )
    except csv.Error:
        dialect = csv.excel
    try:
        rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in r)]
    except csv.Error:  # a field past csv's size limit, a stray NUL: not a table we can split
        return _plain(text)
    if not rows:
        return []
    width = max(len(row) for row in rows)
    lines = []
    for number, row in enumerate(rows):
        cells = [" ".join(cell.split()).replace("|", "\\|") for cell in row]
        cells += [""] * (width - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
        if number == 0:
            lines.append("|" + " --- |" * width)
    return [Section("", "\n".join(lines))]


_TEXT_SPLITTERS: dict[Format, Callable[[str], list[Section]]] = {
    Format.TEXT: _plain,
    Format.MARKDOWN: by_headings,
    Format.CSV: _csv,
    Format.HTML: html_sections,
}


def _no_text(document: ParsedDocument, read_image: ReadImage | None) -> str:
    if document.format is not Format.PDF:
        return "The document is empty: no text found."
    if document.unread_pages and read_image is None:
        return "No text found in this PDF (scanned pages need OCR, which is not available here)."
    if document.unread_pages:
        return (
            "No text found in this PDF: its scanned pages use an image compression we cannot "
            "decode (such as JBIG2)."
        )
    return "No text found in this PDF, not even with OCR on its scanned pages."
