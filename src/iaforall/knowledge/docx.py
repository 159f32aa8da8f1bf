"""DOCX -> Markdown, streamed: headings, paragraphs, lists and tables, within the text limit.

The body (word/document.xml) is read with a streaming XML parser and each paragraph or table is
let go once written, so memory follows the text kept, not the XML (mammoth, behind markitdown,
builds a DOM of the whole body: ~60 bytes of memory per byte of XML, and Word writes ~10 bytes
of XML per character of text). Headings are paragraphs whose style is a built-in heading (in any
language: the style's name stays "heading N") or has an outline level. Left out: footnotes,
comments, headers and footers, tracked deletions and field codes.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import IO
from xml.etree.ElementTree import Element, iterparse

from iaforall.knowledge.document import Section
from iaforall.knowledge.errors import DocumentRefused, UnreadableDocument, too_much_text
from iaforall.knowledge.limits import DocumentLimits
from iaforall.knowledge.markdown_sections import by_headings

BODY = "word/document.xml"
STYLES = "word/styles.xml"
_HEADING_NAME = re.compile(r"heading\s*([1-9])", re.I)
_SKIPPED = {"delText", "instrText"}  # deleted text (tracked changes) and field codes


def docx_sections(path: Path, limits: DocumentLimits) -> list[Section]:
    try:
        with zipfile.ZipFile(path) as archive:
            levels = _heading_levels(archive)
            with archive.open(BODY) as body:
                markdown = _Body(levels, limits).read(body)
    except DocumentRefused:
        raise
    except Exception as exc:  # zipfile and the XML parser: damaged parts
        raise UnreadableDocument(
            f"The DOCX document is damaged and cannot be read ({type(exc).__name__}: {exc}).",
            code="corrupt_document",
        ) from None
    return by_headings(markdown)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _val(element: Element) -> str:
    """The w:val attribute, whatever the namespace (transitional or strict OOXML)."""
    for key, value in element.attrib.items():
        if _local(key) == "val":
            return value
    return ""


def _heading_levels(archive: zipfile.ZipFile) -> dict[str, int]:
    """Style id -> heading level, from the built-in names and outline levels (with basedOn)."""
    if STYLES not in archive.namelist():
        return {}
    own: dict[str, int] = {}
    based_on: dict[str, str] = {}
    with archive.open(STYLES) as styles:
        for _, element in iterparse(styles):
            if _local(element.tag) != "style":
                continue
            style_id = next((v for k, v in element.attrib.items() if _local(k) == "styleId"), "")
            for child in element.iter():
                name = _local(child.tag)
                if name == "name" and (match := _HEADING_NAME.fullmatch(_val(child).strip())):
                    own.setdefault(style_id, int(match[1]))
                elif name == "name" and _val(child).strip().lower() == "title":
                    own.setdefault(style_id, 1)
                elif name == "outlineLvl" and _val(child).isdigit() and int(_val(child)) < 9:
                    own.setdefault(style_id, int(_val(child)) + 1)
                elif name == "basedOn":
                    based_on[style_id] = _val(child)
            element.clear()
    return _inherited(own, based_on)


def _inherited(own: dict[str, int], based_on: dict[str, str]) -> dict[str, int]:
    """Each style's level, its own or its nearest ancestor's. Every chain is walked once: the
    styles met on the way get the answer too (walking each style's chain anew is quadratic in
    a chain of 10,000 styles, each based on the next)."""
    levels: dict[str, int | None] = dict(own)
    for style_id in based_on:
        chain: dict[str, None] = {}  # in order, and a cycle is seen at once
        current = style_id
        while current not in levels and current in based_on and current not in chain:
            chain[current] = None
            current = based_on[current]
        level = levels.get(current)
        for member in chain:
            levels[member] = level
    return {style: level for style, level in levels.items() if level is not None}


class _Body:
    def __init__(self, levels: dict[str, int], limits: DocumentLimits) -> None:
        self.levels = levels
        self.limits = limits
        self.blocks: list[str] = []
        self.chars = 0
        self.tables: list[list[list[str]]] = []  # rows of cells, for each open (nested) table
        self.cells: list[list[str]] = []  # paragraphs of each open cell
        self.fallbacks = 0  # inside mc:Fallback: a second copy (of a text box) for old readers
        self.body: Element | None = None

    def read(self, body: IO[bytes]) -> str:
        for event, element in iterparse(body, events=("start", "end")):
            name = _local(element.tag)
            if name == "Fallback":
                self.fallbacks += 1 if event == "start" else -1
            if event == "start":
                if name == "body":
                    self.body = element
                elif name == "tbl":
                    self.tables.append([])
                elif name == "tr" and self.tables:
                    self.tables[-1].append([])
                elif name == "tc":
                    self.cells.append([])
                continue
            if name == "p":
                if not self.fallbacks:
                    self._paragraph(element)
                element.clear()
            elif name == "tc" and self.cells:
                cell = " ".join(self.cells.pop())
                if self.tables and self.tables[-1]:
                    self.tables[-1][-1].append(cell)
            elif name == "tbl" and self.tables:
                self._table(self.tables.pop())
                element.clear()
            if name in ("p", "tbl") and not self.tables and self.body is not None:
                self.body.clear()  # let go of what is written: memory follows the text kept
        return "\n\n".join(self.blocks)

    def _paragraph(self, paragraph: Element) -> None:
        parts: list[str] = []
        style, outline, listed = "", -1, False
        for child in paragraph.iter():
            name = _local(child.tag)
            if name == "t" and child.text:
                parts.append(child.text)
            elif name == "tab":
                parts.append("\t")
            elif name in ("br", "cr"):
                parts.append("\n")
            elif name == "pStyle":
                style = _val(child)
            elif name == "outlineLvl" and _val(child).isdigit():
                outline = int(_val(child))
            elif name == "numPr":
                listed = True
        text = "".join(parts).strip()
        self._count(1)  # empty paragraphs cost time to read too
        if not text:
            return
        if self.cells:  # inside a table cell: part of the cell
            self.cells[-1].append(" ".join(text.split()))
            return
        level = outline + 1 if 0 <= outline < 9 else self.levels.get(style, 0)
        if level:
            self._add(f"{'#' * min(level, 6)} {' '.join(text.split())}")
        else:
            self._add(f"- {text}" if listed else text)

    def _table(self, rows: list[list[str]]) -> None:
        rows = [row for row in rows if any(cell.strip() for cell in row)]
        if not rows:
            return
        if self.cells:  # a table nested in a cell: its text joins the cell
            self.cells[-1].append(" ".join(" ".join(row) for row in rows))
            return
        width = max(len(row) for row in rows)
        lines = []
        for number, row in enumerate(rows):
            cells = [c.replace("|", "\\|") for c in row] + [""] * (width - len(row))
            lines.append("| " + " | ".join(cells) + " |")
            if number == 0:
                lines.append("|" + " --- |" * width)
        self._add("\n".join(lines))

    def _add(self, block: str) -> None:
        self._count(len(block) + 2)
        self.blocks.append(block)

    def _count(self, chars: int) -> None:
        self.chars += chars
        if self.chars > self.limits.max_chars:
            raise too_much_text(self.limits)
