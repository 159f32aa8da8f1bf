"""Office documents -> sections along their structure, once the zip passed the bomb checks.

Each format has its own streaming reader: docx.py (the Word body through a streaming XML
parser), sheets.py (openpyxl's read-only parser, only the rows that are there) and slides.py
(python-pptx, slide by slide). markitdown read DOCX and XLSX whole (a DOM of the Word body,
every sheet in pandas: memory in proportion to the XML, far beyond the text kept) and PPTX in
quadratic time. A slide is read whole, but slides are small: their count and their XML are
weighed against the limits first.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from iaforall.knowledge.document import Section
from iaforall.knowledge.docx import docx_sections
from iaforall.knowledge.errors import DocumentTooLarge, too_much_text
from iaforall.knowledge.formats import Format
from iaforall.knowledge.limits import DocumentLimits
from iaforall.knowledge.sheets import sheet_sections
from iaforall.knowledge.slides import slide_sections

_SLIDE = re.compile(r"ppt/slides/slide\d+\.xml")
XML_PER_CHAR = 5  # slide XML allowed per character of the text limit (python-pptx keeps each
# slide as an lxml tree: ~5-10 bytes of memory per byte of XML)


def office_sections(path: Path, format: Format, limits: DocumentLimits) -> list[Section]:
    if format is Format.XLSX:
        return sheet_sections(path, limits)
    if format is Format.DOCX:
        return docx_sections(path, limits)
    _weigh_slides(path, limits)
    return slide_sections(path, limits)


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
