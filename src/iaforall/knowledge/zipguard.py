"""Refuse a zip bomb before any parser opens the zip (DOCX, PPTX and XLSX are zips).

First the sizes each member declares (total and compression ratio), then the sizes they really
inflate to, read in small blocks and abandoned as soon as a limit is passed: memory stays flat
and a member that lies about its size is caught. The parsers read through Python's zipfile,
which never inflates a member past the size it declares, so what passed here bounds them too.
While inflating, each XML part goes through expat: a truncated or damaged part is refused here
(some parsers would read half of it without a word), and so is any DTD, which Office never
writes and entity bombs ("billion laughs") need.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from xml.parsers import expat

from iaforall.knowledge.errors import DocumentTooLarge, UnreadableDocument
from iaforall.knowledge.limits import MB, DocumentLimits

BLOCK = 64 * 1024
MAX_MEMBERS = 10_000
RATIO_FLOOR = 1 * MB  # small members may compress very well (repeated XML); only large ones count


def check_zip(path: Path, limits: DocumentLimits) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _check_declared(members, limits)
            _check_inflated(archive, members, limits)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        OSError,
        ValueError,
    ) as exc:
        raise UnreadableDocument(
            f"The document is damaged or truncated and cannot be opened ({exc}).",
            code="corrupt_document",
        ) from None
    except expat.ExpatError as exc:
        raise UnreadableDocument(
            f"The document is damaged: one of its XML parts is malformed or truncated ({exc}).",
            code="corrupt_document",
        ) from None
    except NotImplementedError as exc:  # a compression method zipfile does not know
        raise UnreadableDocument(
            f"The document uses a zip feature we cannot read ({exc}).", code="corrupt_document"
        ) from None


def _check_declared(members: list[zipfile.ZipInfo], limits: DocumentLimits) -> None:
    if len(members) > MAX_MEMBERS:
        raise _bomb(f"it holds {len(members)} parts (at most {MAX_MEMBERS})")
    total = 0
    for member in members:
        total += member.file_size
        if total > limits.max_unzipped_bytes:
            raise _bomb(f"it inflates to more than {limits.max_unzipped_bytes / MB:g} MB")
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_FLOOR and ratio > limits.max_zip_ratio:
            raise _bomb(
                f"its part '{member.filename}' is compressed {ratio:.0f} times "
                f"(at most {limits.max_zip_ratio})"
            )


def _check_inflated(
    archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], limits: DocumentLimits
) -> None:
    total = 0
    for member in members:
        inflated = 0
        xml = _xml_checker() if member.filename.endswith((".xml", ".rels")) else None
        with archive.open(member) as stream:
            while block := stream.read(BLOCK):
                if xml is not None:
                    xml.Parse(block, False)
                inflated += len(block)
                total += len(block)
                if inflated > member.file_size:
                    raise _bomb(f"its part '{member.filename}' inflates past its declared size")
                if total > limits.max_unzipped_bytes:
                    raise _bomb(f"it inflates to more than {limits.max_unzipped_bytes / MB:g} MB")
        if xml is not None:
            xml.Parse(b"", True)


def _xml_checker() -> expat.XMLParserType:
    parser = expat.ParserCreate()

    def refuse_dtd(*_: object) -> None:
        raise UnreadableDocument(
            "The document declares a DTD, which Office documents never do; it was refused "
            "as possibly malicious (an entity bomb).",
            code="corrupt_document",
        )

    parser.StartDoctypeDeclHandler = refuse_dtd
    return parser


def _bomb(why: str) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"The document was refused as a likely zip bomb: {why}.", code="zip_bomb"
    )
