"""A parsed document -> passages of about a target size, for embedding and citing.

Passages never cross a section (a page, slide, sheet or headed part), so each one has a single
location to cite. Inside a section they are cut at the strongest boundary in reach (a blank
line, then a line end, a sentence end, a clause, a word), and each repeats the end of the one
before from a clean boundary, so a sentence cut in two is whole in one of them. A passage's
text is exactly `document.text[start:end]`: a citation can quote it and point to it. A passage
that starts inside a Markdown table (a sheet, a CSV, a table in Word) carries that table's
header row beside it, so its rows still say what their columns are.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from iaforall.knowledge.document import ParsedDocument, Section

_BOUNDARIES = (  # strongest first
    ("\n\n",),
    ("\n",),
    (". ", "? ", "! ", "… ", ".\t", "\u3002", "\uff01", "\uff1f"),  # and CJK sentence ends
    ("; ", ": ", ", "),
    (" ", "\t"),
)
_OVERLAP_STARTS = ("\n", ". ", "? ", "! ", "; ")
_TABLE_HEAD = re.compile(r"^(\|.*\|)[ \t]*\n\|(?:[ \t]*:?-{3,}:?[ \t]*\|)+[ \t]*$", re.M)


@dataclass(frozen=True)
class Chunk:
    index: int  # in the document, from 0
    text: str
    source: str  # the file's name
    location: str  # "page 3", "slide 2 (Budget)", "sheet Costs", "Intro > Scope", or ""
    page: int | None  # 1-based PDF page or slide
    headings: tuple[str, ...]  # outermost first
    section: int  # index in ParsedDocument.sections
    start: int  # offsets in ParsedDocument.text
    end: int
    ocr: bool = False  # read from a scan: small OCR mistakes are possible
    table_header: str = ""  # the header row of the table this passage starts inside, if not in it

    @property
    def citation(self) -> str:
        return f"{self.source}, {self.location}" if self.location else self.source

    @property
    def embedding_text(self) -> str:
        """The text to embed (and to show the model): the passage under its headings, which
        often carry its topic, and under its table's header row."""
        context = " > ".join(self.headings)
        above = [context] if context and context not in self.text else []
        return "\n".join([*above, *filter(None, [self.table_header]), self.text])

    def quote(self, max_chars: int = 240) -> str:
        """The passage's opening words, cut at a word, for showing beside a citation."""
        flat = " ".join(self.text.split())
        if len(flat) <= max_chars:
            return flat
        return flat[:max_chars].rsplit(" ", 1)[0] + " …"


def chunk_document(
    document: ParsedDocument, *, size: int = 1500, overlap: int = 200
) -> list[Chunk]:
    if size < 50:
        raise ValueError("a passage must be at least 50 characters")
    overlap = min(max(overlap, 0), size // 2)  # each passage must move on by half its size
    chunks: list[Chunk] = []
    for number, section in enumerate(document.sections):
        tables = _tables(section.text)
        bodies = [body for body, _, _ in tables]
        for start, end in spans(section.text, size, overlap):
            at = bisect.bisect_right(bodies, start) - 1  # the last table whose body is before
            header = tables[at][2] if at >= 0 and start < tables[at][1] else ""
            chunks.append(_chunk(document, number, section, start, end, len(chunks), header))
    return chunks


def _tables(text: str) -> list[tuple[int, int, str]]:
    """(body start, table end, header row) of each Markdown table in `text`, in order. A
    table's rows are never read as the start of another (rows of `|---|` would each start one,
    and each table's rows be read again: quadratic)."""
    found = []
    at = 0
    while head := _TABLE_HEAD.search(text, at):
        body = head.end() + 1
        stop = body
        while stop < len(text) and text.startswith("|", stop):
            newline = text.find("\n", stop)
            stop = len(text) if newline == -1 else newline + 1
        found.append((body, stop, head[1]))
        at = max(stop, head.end())
    return found


def spans(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of each passage in `text`, trimmed of surrounding white space."""
    found: list[tuple[int, int]] = []
    start = _skip_space(text, 0)
    while start < len(text):
        end = len(text) if len(text) - start <= size else _cut(text, start, start + size, size)
        trimmed = start + len(text[start:end].rstrip())  # not text[:end]: a copy per passage
        if trimmed > start:
            found.append((start, trimmed))
        if end >= len(text):
            break
        start = _skip_space(text, max(_overlap_start(text, end, overlap), start + 1))
    return found


def _cut(text: str, start: int, limit: int, size: int) -> int:
    """Where to end a passage starting at `start`: the strongest boundary in its second half."""
    earliest = start + size // 2
    for separators in _BOUNDARIES:
        best = max(text.rfind(sep, earliest, limit) for sep in separators)
        if best != -1:
            return best + 1
    return limit  # one unbroken run of characters: cut it where it must be


def _overlap_start(text: str, end: int, overlap: int) -> int:
    """The earliest clean boundary within `overlap` characters before `end`."""
    if overlap == 0:
        return end
    window = end - overlap
    starts = [i + len(sep) for sep in _OVERLAP_STARTS if (i := text.find(sep, window, end)) != -1]
    if starts:
        return min(starts)
    space = text.find(" ", window, end)
    return space + 1 if space != -1 else end


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _chunk(
    document: ParsedDocument,
    number: int,
    section: Section,
    start: int,
    end: int,
    index: int,
    table_header: str,
) -> Chunk:
    return Chunk(
        index=index,
        text=section.text[start:end],
        source=document.filename,
        location=section.label,
        page=section.page,
        headings=section.headings,
        section=number,
        start=section.start + start,
        end=section.start + end,
        ocr=section.ocr,
        table_header=table_header,
    )
