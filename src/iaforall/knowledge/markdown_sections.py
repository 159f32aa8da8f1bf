"""Markdown (our own, from Word and HTML, or uploaded) -> sections along its structure.

Headings give each section its path (outermost first). Lines inside fenced code never count as
headings.

Everything here reads uploaded text, so it runs in time linear in it: lines are taken apart
with str methods, and links and emphasis are found by scanning forward (a backtracking regex
such as `(.+?)[ \\t]*#*[ \\t]*$` for a heading's closing #s took cubic time: 9 s for one line
of 2,000 spaces).
"""

from __future__ import annotations

from iaforall.knowledge.document import Section, short_heading

PATH_SEPARATOR = " > "
_EMPHASIS = ("**", "__", "*", "_", "`")  # as Markdown pairs them, longest first


def heading_of(line: str) -> tuple[int, str] | None:
    """(level, title) of an ATX heading line (`## Title ##`), or None."""
    indent = len(line) - len(line.lstrip(" "))
    if indent > 3:
        return None
    rest = line[indent:]
    level = len(rest) - len(rest.lstrip("#"))
    if not 1 <= level <= 6 or rest[level : level + 1] not in (" ", "\t"):
        return None
    title = rest[level:].strip(" \t")
    if not title:  # `(.+?)` needs one character: "#  " is not a heading
        return None
    closed = title.rstrip("#").rstrip(" \t")  # the optional closing sequence, and its spaces
    return level, closed or title[:1]


def fenced(line: str) -> bool:
    """Whether the line opens or closes fenced code (``` or ~~~, indented 3 spaces at most)."""
    stripped = line.lstrip(" ")
    return len(line) - len(stripped) <= 3 and stripped.startswith(("```", "~~~"))


def plain(heading: str) -> str:
    """A heading's words without Markdown links and emphasis."""
    return strip_emphasis(replace_links(heading)).strip()


def replace_links(text: str, *, images_only: bool = False) -> str:
    """`[text](target)` and `![alt](file)` -> their text (only images with `images_only`), in
    one pass: the next `]` and `)` are looked up once each, not once per `[`."""
    parts: list[str] = []
    done = at = 0
    close_bracket = _NextOf(text, "]")
    close_paren = _NextOf(text, ")")
    while (at := text.find("[", at)) != -1:
        image = at > 0 and text[at - 1] == "!"
        start = at - 1 if image else at
        bracket = close_bracket.at_or_after(at + 1)
        if bracket == -1:
            break  # no `]` left: no link can close
        paren = close_paren.at_or_after(bracket + 2) if text.startswith("(", bracket + 1) else -1
        if paren == -1 or (images_only and not image) or start < done:
            at += 1
            continue
        parts += [text[done:start], text[at + 1 : bracket]]
        done = at = paren + 1
    return "".join([*parts, text[done:]]) if parts else text


def strip_emphasis(text: str) -> str:
    """`**bold**`, `_it_`, `` `code` `` -> their words, pairing markers as the regex
    `(\\*\\*|__|\\*|_|`)(.+?)\\1` would, in one forward pass."""
    parts: list[str] = []
    done = at = 0
    nexts = {marker: _NextOf(text, marker) for marker in _EMPHASIS}
    newline = _NextOf(text, "\n")
    while at < len(text):
        if text[at] not in "*_`":
            at += 1
            continue
        for marker in _EMPHASIS:
            if not text.startswith(marker, at):
                continue
            inner = at + len(marker)
            close = nexts[marker].at_or_after(inner + 1)  # at least one character inside
            line_end = newline.at_or_after(inner)
            if close != -1 and (line_end == -1 or line_end >= close):
                parts += [text[done:at], text[inner:close]]
                done = at = close + len(marker)
                break
        else:
            at += 1
    return "".join([*parts, text[done:]]) if parts else text


class _NextOf:
    """The next occurrence of `needle` at or after a position that only moves forward:
    each part of the text is searched once, whatever the number of questions."""

    def __init__(self, text: str, needle: str) -> None:
        self.text, self.needle = text, needle
        self.searched_from, self.found = 0, -2  # -2: nothing searched yet

    def at_or_after(self, position: int) -> int:
        if self.found == -1 or (self.found >= position >= self.searched_from):
            return self.found
        self.searched_from, self.found = position, self.text.find(self.needle, position)
        return self.found


def by_headings(markdown: str) -> list[Section]:
    """One section per heading (with the heading's line), plus any text before the first."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    has_body = False  # a line other than the headings
    in_code = False

    def close() -> None:
        if has_body:  # a heading alone adds nothing: it lives on in the paths below
            headings = tuple(title for _, title in path)
            sections.append(
                Section(PATH_SEPARATOR.join(headings), "\n".join(lines), headings=headings)
            )
        lines.clear()

    for line in markdown.split("\n"):
        if fenced(line):
            in_code = not in_code
        heading = None if in_code else heading_of(line)
        if heading:
            close()
            has_body = False
            level = heading[0]
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, short_heading(plain(heading[1]))))
        elif line.strip():
            has_body = True
        lines.append(line)
    close()
    return sections
