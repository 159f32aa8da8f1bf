"""Every parser on the upload path runs in time linear in its input: each is timed on a ~1 MB
adversarial input (the shapes that made a backtracking regex or a nested loop blow up) against a
benign input of the same size, in the same run (tests/knowledge/linear.py)."""

from __future__ import annotations

import contextlib
import re
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from iaforall.knowledge.chunk import chunk_document
from iaforall.knowledge.document import Section, assemble
from iaforall.knowledge.errors import DocumentRefused
from iaforall.knowledge.formats import Format, sniff
from iaforall.knowledge.markdown_sections import replace_links
from iaforall.knowledge.parse import parse_document
from iaforall.knowledge.query_words import query_pairs, query_words
from tests.knowledge import documents
from tests.knowledge.documents import ENGLISH, FRENCH
from tests.linear import assert_linear

MB = 1_000_000


def sized(unit: str, size: int = MB) -> str:
    """`unit` repeated to `size` characters."""
    return (unit * (size // len(unit) + 1))[:size]


def read_file(path: Path) -> None:
    """parse_document as an upload calls it; a refusal is an answer too."""
    with contextlib.suppress(DocumentRefused):
        parse_document(path, path.name)


def written(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


PROSE = sized(f"## Harbour\n\n{ENGLISH}\n{FRENCH} [the port](https://example.org) **now**.\n\n")
QUESTIONS = sized("## Hours?\nAt *seven*, see [this](x).\n")  # as many sections as lines


@pytest.mark.parametrize(
    "adversarial",
    [
        sized("# a" + " " * 2000 + "b\nbody\n"),  # the closing-#s pattern: cubic
        "# " + sized("["),  # a `[` never closed: each one scanned to the end
        "# " + sized("[a]("),  # a link's `(` never closed
        "# " + sized("*a_"),
        sized("```\n# a\n"),
    ],
    ids=["heading-spaces", "brackets", "open-links", "emphasis", "fences"],
)
def test_markdown(tmp_path: Path, adversarial: str) -> None:
    assert_linear(
        read_file,
        written(tmp_path, "benign.md", QUESTIONS),
        written(tmp_path, "adversarial.md", adversarial),
    )


def test_the_observed_two_kilobyte_heading_reads_at_once(tmp_path: Path) -> None:
    """`"# a" + 2,000 spaces + "b"`: 17 s for its 2 KB file before, as fast as prose now."""
    line = "# a" + " " * 2000 + "b"
    slow = written(tmp_path, "slow.md", f"{line}\n{ENGLISH}\n")
    assert_linear(read_file, written(tmp_path, "ok.md", PROSE[: len(line) + 80]), slow)
    [section] = parse_document(slow, "slow.md").sections
    assert section.headings == ("a b",)  # a heading is one line of words in a passage


def test_images_in_slides() -> None:
    """markitdown's PPTX Markdown loses each image's file name, keeping its alt text."""
    benign = sized("![a](b.png) ")  # as many images as the adversarial has brackets
    assert_linear(lambda text: replace_links(text, images_only=True), benign, sized("!["))
    assert_linear(lambda text: replace_links(text, images_only=True), benign, sized("![a]("))
    assert replace_links("![a logo](logo.png) and [a link](x)", images_only=True) == (
        "a logo and [a link](x)"
    )


def chunked(text: str) -> None:
    chunk_document(assemble("t.md", Format.MARKDOWN, [Section("", text)]))


@pytest.mark.parametrize(
    "adversarial",
    [
        sized("|---|\n"),  # every two rows looked like a new table, read to the end
        "| a |\n" + sized("|" + " " * 1000 + "-\n"),
        sized("| x |\n|" + "-" * 500 + "x\n"),
    ],
    ids=["table-rows", "spaces", "dashes"],
)
def test_chunking(adversarial: str) -> None:
    assert_linear(chunked, PROSE, adversarial)


HTML_PROSE = sized(f"<h2>Harbour</h2><p>{ENGLISH} <b>{FRENCH}</b> <a href='x'>port</a></p>\n")


@pytest.mark.parametrize(
    "adversarial",
    [
        "<p>a" + sized(" ") + "b</p>",  # markdownify: 40,000 spaces took 15 s
        sized("<div>") + "x",
        sized("<p>x</p><li>y"),
        sized("<table><tr><td>a"),
        "<p>" + sized("<"),
    ],
    ids=["spaces", "nesting", "blocks", "tables", "brackets"],
)
def test_html(tmp_path: Path, adversarial: str) -> None:
    assert_linear(
        read_file,
        written(tmp_path, "benign.html", HTML_PROSE),
        written(tmp_path, "adversarial.html", adversarial),
    )


@pytest.mark.parametrize(
    "adversarial", [sized(',"'), sized('"\n'), sized("a;b|c\t")], ids=["quotes", "lines", "mixed"]
)
def test_csv(tmp_path: Path, adversarial: str) -> None:
    """csv.Sniffer's regexes took 12 s on 20 KB of `,"` (50 s on `"` lines)."""
    assert_linear(
        read_file,
        written(tmp_path, "benign.csv", sized("Élodie;Brest;12.50;membre\n")),
        written(tmp_path, "adversarial.csv", adversarial),
    )


def test_text_in_an_encoding_to_detect(tmp_path: Path) -> None:
    benign = tmp_path / "benign.txt"
    benign.write_bytes(sized(f"{FRENCH}\n").encode("cp1252")[:MB])
    adversarial = tmp_path / "adversarial.txt"
    adversarial.write_bytes(bytes(range(0x80, 0x100)) * (MB // 128))
    assert_linear(read_file, benign, adversarial)


def test_retrieval_query_words() -> None:
    def words(query: str) -> None:
        query_words(query)
        query_pairs(query)

    assert_linear(words, sized(f"{ENGLISH} {FRENCH} "), sized("'-"))
    assert_linear(words, sized(f"{ENGLISH} {FRENCH} "), sized("a'b-"))


def with_styles(seed: Path, path: Path, styles: bytes) -> Path:
    with zipfile.ZipFile(seed) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = styles if item.filename == "word/styles.xml" else source.read(item)
            target.writestr(item, data, zipfile.ZIP_STORED)
    return path


def word_styles(count: int, *, chained: bool) -> bytes:
    namespace = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    styles = "".join(
        f'<w:style w:type="paragraph" w:styleId="s{i}"><w:name w:val="Custom {i}"/>'
        f'<w:basedOn w:val="{f"s{i + 1}" if chained else "Normal"}"/></w:style>'
        for i in range(count)
    )
    return f'<?xml version="1.0"?><w:styles xmlns:w="{namespace}">{styles}</w:styles>'.encode()


def test_word_styles_based_on_each_other(tmp_path: Path) -> None:
    """10,000 styles each based on the next: each chain was walked anew (quadratic)."""
    seed = documents.docx(tmp_path / "seed.docx")
    count = MB // 110
    assert_linear(
        read_file,
        with_styles(seed, tmp_path / "benign.docx", word_styles(count, chained=False)),
        with_styles(seed, tmp_path / "chained.docx", word_styles(count, chained=True)),
    )


def workbook(path: Path, sheets: int, last_row: int) -> Path:
    """`sheets` sheets with a cell in row 1 and one in `last_row`, without <dimension> (as
    some writers leave out): openpyxl then yields every row in between."""
    book = Workbook()
    book.remove(book.active)
    for number in range(sheets):
        sheet = book.create_sheet(f"S{number}")
        sheet["A1"], sheet[f"A{last_row}"] = "top", "bottom"
    raw = path.with_suffix(".raw")
    book.save(raw)
    with zipfile.ZipFile(raw) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.startswith("xl/worksheets/"):
                data = re.sub(rb"<dimension[^>]*/>", b"", data)
            out.writestr(item, data)
    return path


def test_a_workbook_with_rows_far_apart(tmp_path: Path) -> None:
    """The observed 23 KB workbook of 40 sheets whose last row is 1,048,576: 8.4 s before."""
    adversarial = workbook(tmp_path / "far.xlsx", 40, 1_048_576)
    benign = workbook(tmp_path / "near.xlsx", 40, 2)
    assert abs(adversarial.stat().st_size - benign.stat().st_size) < 1000
    assert_linear(read_file, benign, adversarial)
    document = parse_document(adversarial, "far.xlsx")
    assert len(document.sections) == 40
    assert document.sections[0].text == "| top |\n| --- |\n| bottom |"


def refused(path: Path, **limits: int) -> DocumentRefused:
    from iaforall.knowledge.limits import DocumentLimits

    with pytest.raises(DocumentRefused) as caught:
        parse_document(path, path.name, DocumentLimits(**limits))
    return caught.value


def test_a_workbook_is_read_within_cells_and_columns(tmp_path: Path) -> None:
    book = Workbook()
    book.active["A1"], book.active["XFD2"] = "name", "far away"
    book.save(tmp_path / "wide.xlsx")
    error = refused(tmp_path / "wide.xlsx")
    assert (error.status, error.code) == (413, "too_many_columns")
    assert "column 16,384" in error.message and "1,024 columns" in error.message
    book = Workbook()
    for row in range(1, 201):
        for column in range(1, 11):  # styled, empty: written out, and they cost time to read
            book.active.cell(row, column).number_format = "0.00"
        book.active.cell(row, 11, "x")
    book.save(tmp_path / "cells.xlsx")
    error = refused(tmp_path / "cells.xlsx", max_cells=1000)
    assert (error.status, error.code) == (413, "too_many_cells")
    assert "more than 1,000 cells" in error.message


def test_a_zip_of_many_small_parts(tmp_path: Path) -> None:
    seed = documents.docx(tmp_path / "seed.docx")

    def padded(path: Path, members: int, size: int) -> Path:
        with zipfile.ZipFile(seed) as source, zipfile.ZipFile(path, "w") as target:
            for item in source.infolist():
                target.writestr(item, source.read(item))
            for number in range(members):
                target.writestr(f"customXml/padding{number}.xml", b"<a/>" + b" " * size)
        return path

    assert_linear(
        read_file,
        padded(tmp_path / "one.docx", 1, MB),
        padded(tmp_path / "many.docx", 9_000, 0),
    )


SLIDE = (
    '<p:sld xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
    'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main">'
    "<p:cSld><p:spTree>{}</p:spTree></p:cSld></p:sld>"
)


def text_box(number: int, text: str) -> str:
    return (
        f'<p:sp><p:nvSpPr><p:cNvPr id="{number}" name="Text {number}"/><p:cNvSpPr/><p:nvPr/>'
        f'</p:nvSpPr><p:spPr><a:xfrm><a:off x="0" y="{number}"/><a:ext cx="9" cy="9"/></a:xfrm>'
        f"</p:spPr><p:txBody><a:bodyPr/><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:txBody></p:sp>"
    )


def table(cell: str) -> str:
    cells = "".join(
        f"<a:tc><a:txBody><a:bodyPr/><a:p><a:r><a:t>{text}</a:t></a:r></a:p></a:txBody></a:tc>"
        for text in ("Item", cell)
    )
    return (
        '<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="2" name="Table"/><p:cNvGraphicFramePr/>'
        "<p:nvPr/></p:nvGraphicFramePr><p:xfrm><a:off x='0' y='0'/><a:ext cx='9' cy='9'/></p:xfrm>"
        "<a:graphic><a:graphicData uri='http://schemas.openxmlformats.org/drawingml/2006/table'>"
        f"<a:tbl><a:tr h='9'>{cells}</a:tr></a:tbl></a:graphicData>"
        "</a:graphic></p:graphicFrame>"
    )


def deck(seed: Path, path: Path, shapes: str) -> Path:
    """The seed presentation with its first slide's shapes replaced, stored uncompressed (1 MB
    of repeated text would compress like a zip bomb)."""
    with zipfile.ZipFile(seed) as source, zipfile.ZipFile(path, "w") as out:
        for item in source.infolist():
            slide = item.filename == "ppt/slides/slide1.xml"
            data = SLIDE.format(shapes).encode() if slide else source.read(item)
            out.writestr(item.filename, data, zipfile.ZIP_STORED)
    return path


def test_slides(tmp_path: Path) -> None:
    """markitdown appended each shape to one growing string, and sent tables through
    markdownify (quadratic in a cell's spaces)."""
    seed = documents.pptx(tmp_path / "seed.pptx")
    paragraph = sized(f"{ENGLISH} ", 700)  # a text box as decks have them
    benign = deck(
        seed, tmp_path / "benign.pptx", "".join(text_box(i, paragraph) for i in range(1000))
    )
    boxes = "".join(text_box(i, "x") for i in range(3_700))  # as many bytes, all in shapes
    assert_linear(read_file, benign, deck(seed, tmp_path / "boxes.pptx", boxes))
    spaces = table("a" + " " * MB + "b")
    assert_linear(read_file, benign, deck(seed, tmp_path / "spaces.pptx", spaces))
    [first, _] = parse_document(tmp_path / "spaces.pptx", "spaces.pptx").sections
    assert first.text == "| Item | a b |\n| --- | --- |"


def test_a_zip_listing_too_many_parts_is_refused_before_it_is_listed(tmp_path: Path) -> None:
    """The upload route sniffs every file in the server's own process: zipfile used to build an
    object per member first (a 35 MB zip of 400,000 empty parts: 230 MB and seconds)."""
    seed = documents.docx(tmp_path / "seed.docx")
    many = tmp_path / "many.docx"
    with zipfile.ZipFile(seed) as source, zipfile.ZipFile(many, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        for number in range(60_000):
            target.writestr(f"p{number}", b"")
    one = tmp_path / "one.docx"
    with zipfile.ZipFile(seed) as source, zipfile.ZipFile(one, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("customXml/padding.xml", b" " * (many.stat().st_size - seed.stat().st_size))

    def sniffed(path: Path) -> None:
        with contextlib.suppress(DocumentRefused):
            sniff(path, path.name)

    assert_linear(sniffed, one, many)
    with pytest.raises(DocumentRefused) as refused:
        sniff(many, "many.docx")
    assert (refused.value.status, refused.value.code) == (413, "zip_bomb")
    assert "its list of parts alone is" in refused.value.message
