"""DOCX, PPTX and XLSX -> Markdown with markitdown, then sections along their structure.

Called only once the zip passed the bomb checks (zipguard). markitdown's converters are used
directly: we already know the format, so its own type detection would be wasted work.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iaforall.knowledge.document import Section
from iaforall.knowledge.errors import DocumentRefused, DocumentTooLarge, UnreadableDocument
from iaforall.knowledge.formats import Format
from iaforall.knowledge.limits import DocumentLimits
from iaforall.knowledge.markdown_sections import by_headings, by_sheets, by_slides

_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")  # keep an image's alt text, drop its file name


def office_sections(path: Path, format: Format, limits: DocumentLimits) -> list[Section]:
    markdown = _IMAGE.sub(r"\1", _convert(path, format))
    sections = _SPLITTERS[format](markdown)
    if format is not Format.DOCX and len(sections) > limits.max_pages:
        what = "slides" if format is Format.PPTX else "sheets"
        raise DocumentTooLarge(
            f"The document has {len(sections)} {what}; at most {limits.max_pages} are read.",
            code="too_many_pages",
        )
    return sections


def html_sections(html: str) -> list[Section]:
    from markitdown import StreamInfo
    from markitdown.converters import HtmlConverter

    stream = io.BytesIO(html.encode("utf-8"))
    result = HtmlConverter().convert(stream, StreamInfo(extension=".html", charset="utf-8"))
    return by_headings(_IMAGE.sub(r"\1", result.markdown))


def _convert(path: Path, format: Format) -> str:
    from markitdown import StreamInfo  # markitdown imports pandas & co: only when needed

    converter = _converter(format)
    try:
        with path.open("rb") as stream:
            return str(converter.convert(stream, StreamInfo(extension=f".{format}")).markdown)
    except DocumentRefused:
        raise
    except Exception as exc:  # zipfile, lxml, mammoth, openpyxl and pandas: each its own kinds
        raise _corrupt(format, exc) from None


def _converter(format: Format) -> Any:
    from markitdown.converters import DocxConverter, PptxConverter, XlsxConverter

    converters: dict[Format, Callable[[], Any]] = {
        Format.DOCX: DocxConverter,
        Format.PPTX: PptxConverter,
        Format.XLSX: XlsxConverter,
    }
    return converters[format]()


def _corrupt(format: Format, exc: Exception) -> UnreadableDocument:
    return UnreadableDocument(
        f"The {format.upper()} document is damaged and cannot be read "
        f"({type(exc).__name__}: {exc}).",
        code="corrupt_document",
    )


_SPLITTERS: dict[Format, Callable[[str], list[Section]]] = {
    Format.DOCX: by_headings,
    Format.PPTX: by_slides,
    Format.XLSX: by_sheets,
}
