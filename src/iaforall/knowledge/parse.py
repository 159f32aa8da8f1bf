"""An uploaded file -> a ParsedDocument, or a clear refusal (see errors.py).

    document = parse_document(path, "notes.pdf", limits, read_image=RapidOcrLines())

Runs synchronously and may take seconds (OCR): call it off the event loop. Memory stays near
the file's size: the size is checked before anything is read, zips are checked for bombs before
they are opened, and pages and characters are counted as they come.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from iaforall.knowledge.document import ParsedDocument, Section, assemble
from iaforall.knowledge.errors import DocumentTooLarge, UnreadableDocument, too_much_text
from iaforall.knowledge.formats import Format, sniff
from iaforall.knowledge.html import html_sections
from iaforall.knowledge.limits import MB, DocumentLimits
from iaforall.knowledge.markdown_sections import by_headings
from iaforall.knowledge.ocr_pages import ReadImage
from iaforall.knowledge.office import office_sections
from iaforall.knowledge.pdf import parse_pdf
from iaforall.knowledge.tables import markdown_table
from iaforall.knowledge.text import decode_text
from iaforall.knowledge.zipguard import check_zip

DELIMITERS = (",", ";", "\t", "|")
SNIFF_CHARS = 20_000
SNIFF_LINES = 50


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
    """A CSV as one Markdown table (commas, semicolons, tabs or bars, as the file uses)."""
    reader = csv.reader(io.StringIO(text), delimiter=csv_delimiter(text), quotechar='"')
    try:
        rows = [[" ".join(c.split()) for c in r] for r in reader if any(c.strip() for c in r)]
    except csv.Error:  # a field past csv's size limit, a stray NUL: not a table we can split
        return _plain(text)
    return [Section("", markdown_table(rows))] if rows else []


def csv_delimiter(text: str) -> str:
    """The delimiter that splits the first lines most consistently (the most lines with the
    same count of it, then the most of it per line). csv.Sniffer was not used: its regexes
    backtrack, and 20 KB of `,"` took it 12 s."""
    lines = [line for line in text[:SNIFF_CHARS].split("\n", SNIFF_LINES)[:SNIFF_LINES] if line]

    def consistency(delimiter: str) -> tuple[int, int]:
        counts = Counter(line.count(delimiter) for line in lines)
        count, lines_with_it = max(counts.items(), key=lambda item: (item[1], item[0]))
        return (lines_with_it, count) if count else (0, 0)

    best = max(DELIMITERS, key=consistency) if lines else ","
    return best if consistency(best) > (0, 0) else ","


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
