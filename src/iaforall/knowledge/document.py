"""A parsed document: its sections in reading order, each with where it is in the file."""

from __future__ import annotations

from dataclasses import dataclass

from iaforall.knowledge.formats import Format

SEPARATOR = "\n\n"  # between sections in the document's text
MAX_HEADING_CHARS = 200  # a heading repeats in every passage under it: a long one is cut


def short_heading(title: str) -> str:
    """A heading or bookmark title as passages carry it: one line, at most MAX_HEADING_CHARS."""
    flat = " ".join(title.split())
    return flat if len(flat) <= MAX_HEADING_CHARS else flat[: MAX_HEADING_CHARS - 1] + "…"


@dataclass(frozen=True)
class Section:
    """One page, slide, sheet or headed part of a document.

    `start` is where its text begins in `ParsedDocument.text`; `headings` is the path of
    headings above it (outermost first); `page` is the 1-based PDF page or slide number.
    """

    label: str
    text: str
    start: int = 0
    page: int | None = None
    headings: tuple[str, ...] = ()
    ocr: bool = False

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class ParsedDocument:
    filename: str
    format: Format
    sections: tuple[Section, ...]
    text: str
    pages: int = 0  # PDF pages, slides or sheets; 0 for formats without pages
    ocr_pages: int = 0  # pages read with OCR
    unread_pages: tuple[int, ...] = ()  # scanned pages whose images could not be decoded


def assemble(
    filename: str,
    format: Format,
    drafts: list[Section],
    *,
    pages: int = 0,
    ocr_pages: int = 0,
    unread_pages: tuple[int, ...] = (),
) -> ParsedDocument:
    """Sections with their text trimmed, empty ones dropped, and offsets into the whole text."""
    sections: list[Section] = []
    offset = 0
    for draft in drafts:
        text = draft.text.strip()
        if not text:
            continue
        if sections:
            offset += len(SEPARATOR)
        sections.append(Section(draft.label, text, offset, draft.page, draft.headings, draft.ocr))
        offset += len(text)
    text = SEPARATOR.join(s.text for s in sections)
    return ParsedDocument(filename, format, tuple(sections), text, pages, ocr_pages, unread_pages)
