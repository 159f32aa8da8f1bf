"""HTML -> Markdown (headings, paragraphs, list items, tables), streamed in one pass.

libxml2's HTML parser (through lxml) calls us back for each tag and piece of text, in document
order and without building a tree, in time linear in the page however deeply it nests (a page
of 200,000 nested <div>s reads in under a second). markitdown's converter (BeautifulSoup and
markdownify) was quadratic: 40,000 spaces in a paragraph took 15 s.
"""

from __future__ import annotations

from typing import Any

from iaforall.knowledge.document import Section
from iaforall.knowledge.markdown_sections import by_headings
from iaforall.knowledge.tables import markdown_table

SKIPPED = frozenset({"head", "script", "style", "noscript", "template", "svg", "math", "iframe"})
HEADINGS = {f"h{n}": n for n in range(1, 7)}
BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd",
        "details", "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer",
        "form", "header", "hr", "html", "legend", "li", "main", "nav", "ol", "p", "pre",
        "section", "summary", "ul",
    }
)  # fmt: skip
_MARKDOWN_STARTS = ("#", "```", "~~~")  # a paragraph that starts so must not become one


def html_sections(html: str) -> list[Section]:
    from lxml import etree  # type: ignore[import-untyped]

    page = _Page()
    parser = etree.HTMLParser(target=page, encoding="utf-8", huge_tree=True)
    parser.feed(html.encode("utf-8"))  # the text is decoded already: its <meta> must not count
    parser.close()
    return by_headings("\n\n".join(page.blocks))


class _Page:
    """An lxml parser target: collects the page's Markdown blocks as the parser goes."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.words: list[str] = []  # the text of the block (or table cell) being read
        self.skipping = 0  # inside <script>, <style>…: how deep
        self.preformatted = 0
        self.heading = 0
        self.listed = False  # the current block is a list item
        self.table: list[list[str]] | None = None  # the open table's rows of cells
        self.nested = 0  # tables open inside its cells: their words join the cell, as read

    def start(self, tag: Any, attrib: dict[str, str]) -> None:
        name = str(tag).lower()
        if self.skipping or name in SKIPPED:
            self.skipping += 1
            return
        if name == "img" and attrib.get("alt"):
            self.words.append(f" {attrib['alt']} ")
        elif name == "br":
            self.words.append("\n")
        elif self.nested or (self.table is not None and name == "table"):
            self.nested += name == "table"
            self.words.append(" ")
        elif name == "table":
            self._flush()
            self.table = []
        elif name == "tr" and self.table is not None:
            self.table.append([])
        elif name in ("td", "th") and self.table is not None:
            self._flush()
        elif self.table:
            pass  # a heading or paragraph in a cell is part of the cell
        elif name in HEADINGS:
            self._flush()
            self.heading = HEADINGS[name]
        elif name in BLOCKS:
            self._flush()
            self.listed = name == "li"
            self.preformatted += name == "pre"

    def end(self, tag: Any) -> None:
        name = str(tag).lower()
        if self.skipping:
            self.skipping -= 1
            return
        if self.nested:
            self.nested -= name == "table"
            self.words.append(" ")
        elif name in ("td", "th") and self.table is not None:
            if not self.table:
                self.table.append([])
            self.table[-1].append(" ".join(self._take().split()))
        elif name == "table" and self.table is not None:
            rows = [row for row in self.table if any(row)]
            self.table = None
            self._flush()
            if rows:
                self.blocks.append(markdown_table(rows))
        elif self.table:
            pass
        elif name in HEADINGS or name in BLOCKS:
            self._flush()
            self.preformatted -= name == "pre" and self.preformatted > 0

    def data(self, text: str) -> None:
        if not self.skipping:
            self.words.append(text)

    def comment(self, text: str) -> None:
        pass

    def close(self) -> None:
        self._flush()

    def _take(self) -> str:
        text = "".join(self.words)
        self.words.clear()
        return text

    def _flush(self) -> None:
        """Ends the block being read (a cell's text waits for its cell's end)."""
        if self.table:
            return
        text = self._take()
        if self.preformatted:
            block = "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))
        else:
            block = "\n".join(" ".join(line.split()) for line in text.split("\n"))
            block = "\n".join(line for line in block.split("\n") if line)
        if not block.strip():
            self.heading, self.listed = 0, False
            return
        if self.heading:
            block = f"{'#' * self.heading} {' '.join(block.split())}"
        elif block.startswith(_MARKDOWN_STARTS):
            block = "\\" + block
        if self.listed:
            block = f"- {block}"
        self.blocks.append(block)
        self.heading, self.listed = 0, False
