"""Office documents -> sections along their structure, once the zip passed the bomb checks.

PPTX and HTML go through markitdown's converters (used directly: we already know the format, so
its own type detection would be wasted work). DOCX and XLSX are streamed by docx.py and
sheets.py instead: markitdown reads them whole (a DOM of the Word body, every sheet in pandas),
which costs memory in proportion to the XML, far beyond the text kept. A slide is read whole
too, but slides are small: their count and their XML are weighed against the limits first.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from iaforall.knowledge.document import Section
from iaforall.knowledge.docx import docx_sections
from iaforall.knowledge.errors import (
    DocumentRefused,
    DocumentTooLarge,
    UnreadableDocument,
    too_much_text,
)
from iaforall.knowledge.formats import Format
from iaforall.knowledge.limits import DocumentLimits
from iaforall.knowledge.markdown_sections import by_slides, replace_links
from iaforall.knowledge.sheets import sheet_sections

_SLIDE = re.compile(r"ppt/slides/slide\d+\.xml")
XML_PER_CHAR = 5  # slide XML allowed per character of the text limit (python-pptx keeps each
# slide as an lxml tree: ~5-10 bytes of memory per byte of XML)


def office_sections(path: Path, format: Format, limits: DocumentLimits) -> list[Section]:
    if format is Format.XLSX:
        return sheet_sections(path, limits)
    if format is Format.DOCX:
        return docx_sections(path, limits)
    _weigh_slides(path, limits)
    # an image keeps its alt text, not its file name
    return by_slides(replace_links(_convert_slides(path), images_only=True))


def _weigh_slides(path: Path, limits: DocumentLimits) -> None:
    with zipfile.ZipFile(path) as archive:
        slides = [m for m in archive.infolist() if _SLIDE.fullmatch(m.filename)]
    if len(slides) > limits.max_pages:
        raise DocumentTooLarge(
            f"The presentation has {len(slides)} slides; at most {limits.max_pages} are read.",
            code="too_many_pages",
        )
    if sum(m.file_size for m in slides) > limits.max_chars * XML_PER_CHAR:
        raise too_much_text(limits)


def _convert_slides(path: Path) -> str:
    from markitdown import StreamInfo  # markitdown imports pandas & co: only when needed
    from markitdown.converters import PptxConverter

    try:
        with path.open("rb") as stream:
            converter = PptxConverter()  # type: ignore[no-untyped-call]
            return str(converter.convert(stream, StreamInfo(extension=".pptx")).markdown)
    except DocumentRefused:
        raise
    except Exception as exc:  # zipfile, lxml and python-pptx: each its own kinds
        raise UnreadableDocument(
            f"The PPTX presentation is damaged and cannot be read ({type(exc).__name__}: {exc}).",
            code="corrupt_document",
        ) from None
