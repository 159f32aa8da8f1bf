"""PPTX -> one section per slide: its title as a heading, then its shapes' text, tables (as
Markdown tables), charts' data and pictures' alt text, top to bottom, and the speaker notes.

Read straight from the zip's XML parts, a slide at a time, by walking each slide's tree once
(expat builds it in C). markitdown's converter, used before, appended every shape to one string
held in a closure, which CPython copies each time (quadratic in the presentation: 10,000 small
text boxes took 16 s), and sent each table through markdownify (quadratic in a cell's spaces);
python-pptx alone runs an XPath query per shape property (~0.8 ms a shape). The slides' XML is
weighed against the limits before any is read, and zipguard.py refused DTDs and bombs.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element, fromstring

from iaforall.knowledge.document import Section, short_heading
from iaforall.knowledge.errors import DocumentRefused, UnreadableDocument, too_much_text
from iaforall.knowledge.limits import DocumentLimits
from iaforall.knowledge.tables import markdown_table

PRESENTATION = "ppt/presentation.xml"
TITLES = frozenset({"title", "ctrTitle"})
_NOWHERE = (float("-inf"), float("-inf"))
MAX_POINTS = 100_000  # of a chart's series: an index beyond is not read


def slide_sections(path: Path, limits: DocumentLimits) -> list[Section]:
    try:
        with zipfile.ZipFile(path) as archive:
            return _Deck(archive).sections(limits)
    except DocumentRefused:
        raise
    except Exception as exc:  # zipfile and the XML parser: damaged parts
        raise UnreadableDocument(
            f"The PPTX presentation is damaged and cannot be read ({type(exc).__name__}: {exc}).",
            code="corrupt_document",
        ) from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: Element, name: str) -> Iterator[Element]:
    return element.iterfind(f"{{*}}{name}")  # in any namespace: transitional or strict OOXML


def _child(element: Element, *path: str) -> Element | None:
    return element.find("/".join(f"{{*}}{name}" for name in path))


def _relationship_id(element: Element) -> str:
    """The r:id attribute (the namespaced `id`, not a plain one)."""
    return next(
        (v for k, v in element.attrib.items() if k.startswith("{") and _local(k) == "id"), ""
    )


class _Deck:
    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.names = set(archive.namelist())

    def sections(self, limits: DocumentLimits) -> list[Section]:
        sections: list[Section] = []
        chars = 0
        for number, part in enumerate(self._slide_parts(), 1):
            title, text = self._slide(part)
            chars += len(text)
            if chars > limits.max_chars:
                raise too_much_text(limits)
            heading = short_heading(title)
            label = f"slide {number}" + (f" ({heading})" if heading else "")
            sections.append(Section(label, text, page=number, headings=(heading,)[: bool(heading)]))
        return sections

    def _xml(self, part: str) -> Element:
        return fromstring(self.archive.read(part))

    def _relationships(self, part: str) -> dict[str, tuple[str, str]]:
        """r:id -> (relationship type's last word, part name) of a part's internal links."""
        folder, name = posixpath.split(part)
        rels = posixpath.join(folder, "_rels", f"{name}.rels")
        if rels not in self.names:
            return {}
        found = {}
        for link in self._xml(rels):
            target = link.get("Target", "")
            if link.get("TargetMode") == "External" or not target:
                continue
            where = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
            kind = link.get("Type", "").rsplit("/", 1)[-1]
            found[link.get("Id", "")] = (kind, posixpath.normpath(where))
        return found

    def _slide_parts(self) -> list[str]:
        """The slides' parts, in the presentation's order."""
        links = self._relationships(PRESENTATION)
        listed = _child(self._xml(PRESENTATION), "sldIdLst")
        parts = []
        for slide in listed if listed is not None else ():
            kind, part = links.get(_relationship_id(slide), ("", ""))
            if kind == "slide" and part in self.names:
                parts.append(part)
        return parts

    def _slide(self, part: str) -> tuple[str, str]:
        links = self._relationships(part)
        tree = _child(self._xml(part), "cSld", "spTree")
        title, parts = "", []
        for shape in _shapes(tree) if tree is not None else ():
            name = _local(shape.tag)
            if name == "sp" and _placeholder(shape) in TITLES and not title:
                title = " ".join(_text(shape).split())
            elif name == "sp":
                parts.append(_text(shape))
            elif name == "pic":
                described = _child(shape, "nvPicPr", "cNvPr")
                alt = described.get("descr", "") if described is not None else ""
                parts.append(" ".join(alt.split()))
            elif name == "graphicFrame":
                parts.append(self._frame(shape, links))
        notes = next((p for kind, p in links.values() if kind == "notesSlide"), None)
        if notes in self.names:
            body = _child(self._xml(notes), "cSld", "spTree")
            shapes = _shapes(body) if body is not None else iter(())
            said = [_text(s) for s in shapes if _placeholder(s) == "body"]
            if "".join(said).strip():
                parts.append("### Notes:\n" + "\n".join(t for t in said if t.strip()))
        lines = [f"# {title}"] if title else []
        return title, "\n".join(lines + [p for p in parts if p.strip()])

    def _frame(self, frame: Element, links: dict[str, tuple[str, str]]) -> str:
        """A table, or a chart's data (from the values cached in its part)."""
        for element in frame.iter():
            name = _local(element.tag)
            if name == "tbl":
                return _table(element)
            if name == "chart":
                kind, part = links.get(_relationship_id(element), ("", ""))
                return _chart(self._xml(part)) if kind == "chart" and part in self.names else ""
        return ""


def _shapes(tree: Element) -> Iterator[Element]:
    """The shapes of a shape tree, groups opened, each level top to bottom then left to right
    (without recursion: groups may nest deeply)."""
    stack = [iter(sorted(tree, key=_offset))]
    while stack:
        shape = next(stack[-1], None)
        if shape is None:
            stack.pop()
        elif _local(shape.tag) == "grpSp":
            stack.append(iter(sorted(shape, key=_offset)))
        else:
            yield shape


def _offset(shape: Element) -> tuple[float, float]:
    """(top, left) as the shape's own transform says; placeholders that inherit theirs from
    the layout keep their order in the file."""
    for child in shape:
        name = _local(child.tag)
        xfrm = child if name == "xfrm" else _child(child, "xfrm") if name.endswith("SpPr") else None
        offset = _child(xfrm, "off") if xfrm is not None else None
        if offset is not None:
            return (float(offset.get("y", 0)), float(offset.get("x", 0)))
    return _NOWHERE


def _placeholder(shape: Element) -> str | None:
    """The placeholder type ("title", "body"…) of a shape, or None if it is not one."""
    for properties in shape:
        if _local(properties.tag).startswith("nv"):
            found = _child(properties, "nvPr", "ph")
            return None if found is None else found.get("type", "body")
    return None


def _text(shape: Element) -> str:
    body = _child(shape, "txBody")
    if body is None:
        return ""
    return "\n".join(_paragraph(p) for p in _children(body, "p")).strip()


def _paragraph(paragraph: Element) -> str:
    parts = []
    for element in paragraph.iter():
        name = _local(element.tag)
        if name == "t" and element.text:
            parts.append(element.text)
        elif name == "br":
            parts.append("\n")
    return "".join(parts)


def _table(table: Element) -> str:
    rows = [
        [" ".join(" ".join(_paragraph(p) for p in cell.iter() if _local(p.tag) == "p").split())
         for cell in _children(row, "tc")]
        for row in _children(table, "tr")
    ]  # fmt: skip
    rows = [row for row in rows if any(row)]
    return markdown_table(rows) if rows else ""


def _chart(chart: Element) -> str:
    series = [s for s in chart.iter() if _local(s.tag) == "ser"]
    if not series:
        return ""
    names = [_values(_child(s, "tx"))[0] if _values(_child(s, "tx")) else "" for s in series]
    categories = _values(_child(series[0], "cat"))
    values = [_values(_child(s, "val")) for s in series]
    rows = [["Category", *names]]
    for index, category in enumerate(categories):
        rows.append([category, *(v[index] if index < len(v) else "" for v in values)])
    title = _child(chart, "chart", "title")
    said = "" if title is None else " ".join(_paragraph(title).split())
    return f"### Chart{f': {said}' if said else ''}\n\n{markdown_table(rows)}"


def _values(reference: Element | None) -> list[str]:
    """The cached values of a chart's series name, categories or values, by their index."""
    if reference is None:
        return []
    points: dict[int, str] = {}
    for point in reference.iter():
        if _local(point.tag) == "pt" and (value := _child(point, "v")) is not None:
            index = point.get("idx", "")
            if index.isdigit() and int(index) < MAX_POINTS:
                points[int(index)] = value.text or ""
    return [points.get(i, "") for i in range(max(points) + 1)] if points else []
