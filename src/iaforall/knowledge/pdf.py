"""PDF -> one section per page, from its text layer, or with OCR where a page is a scan.

Every page's text layer is read first (fast), so the page and OCR limits refuse a document
before the slow part starts.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

from pypdf import PageObject, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PyPdfError

from iaforall.knowledge.document import ParsedDocument, Section, assemble, short_heading
from iaforall.knowledge.errors import (
    DocumentRefused,
    DocumentTooLarge,
    UnreadableDocument,
    too_much_text,
)
from iaforall.knowledge.formats import Format
from iaforall.knowledge.limits import DocumentLimits
from iaforall.knowledge.ocr_pages import ReadImage, has_images, read_scanned_page

_SPACES = re.compile(r" {3,}")  # layout pads columns with spaces: two still part cells
_BLANKS = re.compile(r"\n{3,}")
MAX_MARKS = 10_000
MIN_TEXT = 8  # fewer visible characters than this: a scan (maybe with a page number on it)


def parse_pdf(
    path: Path, filename: str, limits: DocumentLimits, read_image: ReadImage | None
) -> ParsedDocument:
    try:
        return _parse(path, filename, limits, read_image)
    except DocumentRefused:
        raise
    except FileNotDecryptedError:
        raise _password_protected() from None
    except (
        PdfReadError,
        PyPdfError,
        DependencyError,  # a filter needing a program that is not installed
        NotImplementedError,  # a filter pypdf does not know
        zlib.error,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        AssertionError,
        RecursionError,
        EOFError,
        OSError,
    ) as exc:
        # pypdf reports damage as any of these, deep inside its object parser
        raise UnreadableDocument(
            f"The PDF is damaged or truncated and cannot be read ({type(exc).__name__}: {exc}).",
            code="corrupt_document",
        ) from None


def _parse(
    path: Path, filename: str, limits: DocumentLimits, read_image: ReadImage | None
) -> ParsedDocument:
    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):  # "" opens owner-password-only PDFs
        raise _password_protected()
    count = len(reader.pages)
    if count > limits.max_pages:
        raise DocumentTooLarge(
            f"The PDF has {count} pages; at most {limits.max_pages} are read.",
            code="too_many_pages",
        )
    texts: list[str] = []
    chars = 0
    for page in reader.pages:
        text = page_text(page)
        chars += len(text)
        if chars > limits.max_chars:
            raise too_much_text(limits)
        texts.append(text)
    scans = [
        number
        for number, text in enumerate(texts)
        if len("".join(text.split())) < MIN_TEXT and has_images(reader.pages[number])
    ]
    if read_image is not None and len(scans) > limits.max_ocr_pages:
        raise DocumentTooLarge(
            f"The PDF has {len(scans)} scanned pages; at most {limits.max_ocr_pages} are "
            f"read with OCR.",
            code="too_many_scanned_pages",
        )
    unread: list[int] = []
    for number in scans:
        read = read_scanned_page(reader.pages[number], read_image) if read_image else None
        if read is None:
            unread.append(number + 1)
            continue
        texts[number] = read
        chars += len(read)
        if chars > limits.max_chars:
            raise too_much_text(limits)
    scanned = set(scans) - {number - 1 for number in unread}
    paths = outline_paths(reader, count)
    sections = [
        Section(
            f"page {number + 1}",
            text,
            page=number + 1,
            headings=paths[number],
            ocr=number in scanned,
        )
        for number, text in enumerate(texts)
    ]
    return assemble(
        filename,
        Format.PDF,
        sections,
        pages=count,
        ocr_pages=len(scans) - len(unread),
        unread_pages=tuple(unread),
    )


def outline_paths(reader: PdfReader, count: int) -> list[tuple[str, ...]]:
    """For each page, the path of bookmarks (the PDF's outline) it falls under, if it has one:
    a page belongs to the last bookmark at or before it, and to that bookmark's parents."""
    marks: list[tuple[int, int, str]] = []  # (page, depth, title) in outline order

    def walk(items: list[Any], depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            page = reader.get_destination_page_number(item)
            title = short_heading(str(item.title or ""))
            if page is not None and 0 <= page < count and title and len(marks) < MAX_MARKS:
                marks.append((page, depth, title))

    try:
        walk(reader.outline, 0)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return [()] * count  # a damaged outline: the pages themselves are still good
    paths: list[tuple[str, ...]] = []
    current: list[tuple[int, str]] = []
    marks.sort(key=lambda mark: mark[0])  # stable: outline order within a page
    next_mark = 0
    for page in range(count):
        while next_mark < len(marks) and marks[next_mark][0] <= page:
            _, depth, title = marks[next_mark]
            current = [(d, t) for d, t in current if d < depth] + [(depth, title)]
            next_mark += 1
        paths.append(tuple(title for _, title in current))
    return paths


def page_text(page: PageObject) -> str:
    """The page's text in layout order, so a table's row stays on one line."""
    try:
        text = page.extract_text(extraction_mode="layout")
    except (
        PyPdfError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        ZeroDivisionError,
    ):
        text = page.extract_text()  # layout mode is the younger, less forgiving one
    lines = (_SPACES.sub("  ", line.strip()) for line in text.split("\n"))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def _password_protected() -> UnreadableDocument:
    return UnreadableDocument(
        "This PDF is password-protected; remove the password and upload it again.",
        code="encrypted_document",
    )
