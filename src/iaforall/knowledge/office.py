"""DOCX and PPTX -> Markdown with markitdown, then sections along their structure; XLSX is
streamed by sheets.py. HTML goes through markitdown's converter too.

Called only once the zip passed the bomb checks (zipguard). markitdown's converters are used
directly: we already know the format, so its own type detection would be wasted work. They read
a Word body or a slide whole into memory (mammoth builds a DOM: ~60 bytes of memory per byte of
XML), so the XML they would read is weighed first against the text limit.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iaforall.knowledge.document import Section
from iaforall.knowledge.errors import DocumentRefused, DocumentTooLarge, UnreadableDocument
from iaforall.knowledge.formats import Format
from iaforall.knowledge.limits import DocumentLimits
from iaforall.knowledge.markdown_sections import by_headings, by_slides
from iaforall.knowledge.pdf import too_much_text
from iaforall.knowledge.sheets import sheet_sections

_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")  # keep an image's alt text, drop its file name
_SLIDE = re.compile(r"ppt/slides/slide\d+\.xml")
XML_PER_CHAR = 2  # XML bytes allowed per character of the text limit (markup is most of it)


def office_sections(path: Path, format: Format, limits: DocumentLimits) -> list[Section]:
    if format is Format.XLSX:
        return sheet_sections(path, limits)
    _weigh(path, format, limits)
    return _SPLITTERS[format](_IMAGE.sub(r"\1", _convert(path, format)))


def html_sections(html: str) -> list[Section]:
    from markitdown import StreamInfo
    from markitdown.converters import HtmlConverter

    stream = io.BytesIO(html.encode("utf-8"))
    result = HtmlConverter().convert(stream, StreamInfo(extension=".html", charset="utf-8"))
    return by_headings(_IMAGE.sub(r"\1", result.markdown))


def _weigh(path: Path, format: Format, limits: DocumentLimits) -> None:
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
    if format is Format.PPTX:
        slides = [m for m in members if _SLIDE.fullmatch(m.filename)]
        if len(slides) > limits.max_pages:
            raise DocumentTooLarge(
                f"The presentation has {len(slides)} slides; at most {limits.max_pages} are read.",
                code="too_many_pages",
            )
        xml = sum(m.file_size for m in slides)
    else:
        xml = sum(m.file_size for m in members if m.filename == "word/document.xml")
    if xml > limits.max_chars * XML_PER_CHAR:
        raise too_much_text(limits)


def _convert(path: Path, format: Format) -> str:
    from markitdown import StreamInfo  # markitdown imports pandas & co: only when needed

    converter = _converter(format)
    try:
        with path.open("rb") as stream:
            return str(converter.convert(stream, StreamInfo(extension=f".{format}")).markdown)
    except DocumentRefused:
        raise
    except Exception as exc:  # zipfile, lxml, mammoth and python-pptx: each its own kinds
        raise UnreadableDocument(
            f"The {format.upper()} document is damaged and cannot be read "
            f"({type(exc).__name__}: {exc}).",
            code="corrupt_document",
        ) from None


def _converter(format: Format) -> Any:
    from markitdown.converters import DocxConverter, PptxConverter

    converters: dict[Format, Callable[[], Any]] = {
        Format.DOCX: DocxConverter,
        Format.PPTX: PptxConverter,
    }
    return converters[format]()


_SPLITTERS: dict[Format, Callable[[str], list[Section]]] = {
    Format.DOCX: by_headings,
    Format.PPTX: by_slides,
}
