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
MAX_DIRECTORY_BYTES = 2 * MB  # a real Office file's table of contents is under 100 KB
_END = b"PK\x05\x06"  # end of central directory record
_END64_LOCATOR = b"PK\x06\x07"
_END64 = b"PK\x06\x06"
RATIO_FLOOR = 1 * MB  # small members may compress very well (repeated XML); only large ones count


def check_directory(path: Path) -> None:
    """Refuse a zip whose table of contents (central directory) is too large, from the size its
    end record declares, before zipfile reads it: zipfile makes an object per member, all at
    once (400,000 empty members, a 35 MB upload, cost the server 230 MB and seconds just to
    list them). Nothing is refused when the record is missing: zipfile then says what is wrong.
    """
    size = _directory_size(path)
    if size is not None and size > MAX_DIRECTORY_BYTES:
        raise _bomb(
            f"its list of parts alone is {size / MB:.1f} MB (at most {MAX_DIRECTORY_BYTES / MB:g} "
            "MB)"
        )


def _directory_size(path: Path) -> int | None:
    with path.open("rb") as file:
        file.seek(0, 2)
        length = file.tell()
        file.seek(max(0, length - (65_535 + 22)))  # the record, then a comment of 64 KB at most
        tail = file.read()
        at = tail.rfind(_END)
        if at == -1 or len(tail) - at < 22:
            return None
        size = int.from_bytes(tail[at + 12 : at + 16], "little")
        if size != 0xFFFFFFFF:
            return size
        locator = tail[at - 20 : at]  # Zip64: the real size is in another record
        if len(locator) < 20 or not locator.startswith(_END64_LOCATOR):
            return None
        file.seek(int.from_bytes(locator[8:16], "little"))
        record = file.read(56)
        if len(record) < 56 or not record.startswith(_END64):
            return None
        return int.from_bytes(record[40:48], "little")


def check_zip(path: Path, limits: DocumentLimits) -> None:
    check_directory(path)
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
