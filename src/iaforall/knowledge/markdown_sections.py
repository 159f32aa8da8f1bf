"""Markdown (our own, from markitdown, or uploaded) -> sections along its structure.

Headings give each section its path (outermost first); a slide marker from markitdown starts a
slide. Lines inside fenced code never count as headings.
"""

from __future__ import annotations

import re

from iaforall.knowledge.document import Section

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SLIDE = re.compile(r"^<!-- Slide number: (\d+) -->\s*$")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(.+?)\1")
PATH_SEPARATOR = " > "


def plain(heading: str) -> str:
    """A heading's words without Markdown links and emphasis."""
    return _EMPHASIS.sub(r"\2", _LINK.sub(r"\1", heading)).strip()


def by_headings(markdown: str) -> list[Section]:
    """One section per heading (with the heading's line), plus any text before the first."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    fenced = False

    def close() -> None:
        body = [line for line in lines if not _HEADING.match(line)]
        if "".join(body).strip():  # a heading alone adds nothing: it lives on in the paths below
            headings = tuple(title for _, title in path)
            sections.append(
                Section(PATH_SEPARATOR.join(headings), "\n".join(lines), headings=headings)
            )
        lines.clear()

    for line in markdown.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading:
            close()
            level = len(heading[1])
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, plain(heading[2])))
        lines.append(line)
    close()
    return sections


def by_slides(markdown: str) -> list[Section]:
    """markitdown's PPTX output: a marker comment opens each slide, its title is a `#` line."""
    sections: list[Section] = []
    number: int | None = None
    lines: list[str] = []

    def close() -> None:
        if number is None:
            return
        titles = [plain(m[2]) for line in lines if (m := _HEADING.match(line))]
        label = f"slide {number}" + (f" ({titles[0]})" if titles else "")
        text = "\n".join(lines)
        sections.append(Section(label, text, page=number, headings=tuple(titles[:1])))

    for line in markdown.split("\n"):
        if marker := _SLIDE.match(line):
            close()
            number, lines = int(marker[1]), []
        else:
            lines.append(line)
    close()
    return sections
