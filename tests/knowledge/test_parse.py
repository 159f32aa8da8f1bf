"""Real documents of every format come out as their exact passages, each where it was."""

from __future__ import annotations

import zipfile
from pathlib import Path

from iaforall.knowledge.formats import Format
from iaforall.knowledge.ocr_pages import RapidOcrLines
from iaforall.knowledge.parse import parse_document
from tests.knowledge import documents
from tests.knowledge.documents import ENGLISH, FRENCH, FRENCH_2, SCAN_ENGLISH, SCAN_FRENCH


def test_a_pdf_gives_each_page_its_text_and_number(tmp_path: Path) -> None:
    document = parse_document(documents.text_pdf(tmp_path / "port.pdf"), "port.pdf")
    assert document.format is Format.PDF
    assert document.pages == 3
    assert [(s.label, s.page, s.headings) for s in document.sections] == [
        ("page 1", 1, ("Harbour",)),  # the PDF's bookmarks give each page its headings
        ("page 2", 2, ("Harbour", "Règles")),
        ("page 3", 3, ("Harbour", "Prices")),
    ]
    english, french, table = (s.text for s in document.sections)
    assert english == ENGLISH
    assert french == f"{FRENCH}\n{FRENCH_2}"
    # a table keeps each row on its own line, cells apart
    assert table.split("\n") == ["Item  Quantity  Price", "Lantern  12  4.50", "Rope  3  19.90"]
    for section in document.sections:
        assert document.text[section.start : section.end] == section.text


def test_a_scanned_page_is_read_with_ocr_in_english_and_french(
    tmp_path: Path, ocr: RapidOcrLines
) -> None:
    path = documents.scanned_pdf(tmp_path / "scan.pdf")
    document = parse_document(path, "scan.pdf", read_image=ocr)
    assert document.ocr_pages == 1
    [page] = document.sections
    assert (page.label, page.page, page.ocr) == ("page 1", 1, True)
    assert page.text.split("\n") == [SCAN_ENGLISH, SCAN_FRENCH]


def test_only_pages_without_a_text_layer_go_through_ocr(tmp_path: Path, ocr: RapidOcrLines) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for part in (
        documents.text_pdf(tmp_path / "text.pdf", pages=[[ENGLISH]]),
        documents.scanned_pdf(tmp_path / "scan.pdf", (SCAN_FRENCH,)),
    ):
        for page in PdfReader(part).pages:
            writer.add_page(page)
    writer.write(tmp_path / "mixed.pdf")
    seen: list[tuple[int, int]] = []

    def counting(image):  # type: ignore[no-untyped-def]
        seen.append(image.size)
        return ocr(image)

    document = parse_document(tmp_path / "mixed.pdf", "mixed.pdf", read_image=counting)
    assert [(s.label, s.text, s.ocr) for s in document.sections] == [
        ("page 1", ENGLISH, False),
        ("page 2", SCAN_FRENCH, True),
    ]
    assert seen == [(1240, 1754)]


def test_a_docx_keeps_its_headings_and_its_table(tmp_path: Path) -> None:
    document = parse_document(documents.docx(tmp_path / "rules.docx"), "rules.docx")
    assert document.format is Format.DOCX
    labels = [(s.label, s.headings) for s in document.sections]
    assert labels == [
        ("Harbour rules", ("Harbour rules",)),
        ("Harbour rules > Règles en français", ("Harbour rules", "Règles en français")),
        ("Prices", ("Prices",)),
    ]
    rules, french, prices = (s.text for s in document.sections)
    assert rules == f"# Harbour rules\n\n{ENGLISH}"
    assert french == f"## Règles en français\n\n{FRENCH}"
    assert "| Item | Quantity | Price |" in prices
    assert "| Lantern | 12 | 4.50 |" in prices


def test_a_pptx_gives_one_section_per_slide(tmp_path: Path) -> None:
    document = parse_document(documents.pptx(tmp_path / "talk.pptx"), "talk.pptx")
    assert document.pages == 2
    assert [(s.label, s.page, s.text) for s in document.sections] == [
        ("slide 1 (Welcome)", 1, f"# Welcome\n{ENGLISH}"),
        ("slide 2 (Bienvenue)", 2, f"# Bienvenue\n{FRENCH}"),
    ]


def test_an_xlsx_gives_one_table_per_sheet(tmp_path: Path) -> None:
    document = parse_document(documents.xlsx(tmp_path / "budget.xlsx"), "budget.xlsx")
    prices, notes = document.sections
    assert prices.label == "sheet Prices"
    assert prices.text.split("\n")[0] == "| Item | Quantity | Price |  |  |"
    assert prices.text.split("\n")[1:] == [
        "| --- | --- | --- | --- | --- |",
        "| Lantern | 12 | 4.50 |  |  |",
        "| Rope | 3 | 19.90 |  |  |",
        "| Buoy | 2 | 7.25 |  | 2026-03-01 |",
    ]
    assert notes.label == "sheet Notes"
    assert f"| {FRENCH} |" in notes.text


def test_html_and_markdown_are_cut_at_their_headings(tmp_path: Path) -> None:
    html = tmp_path / "page.html"
    html.write_text(
        "<!doctype html><html><head><title>t</title><style>p{}</style></head><body>"
        f"<h1>Port</h1><p>{ENGLISH}</p><h2>Été</h2><p>{FRENCH}</p>"
        "<script>alert('no')</script></body></html>",
        encoding="utf-8",
    )
    document = parse_document(html, "page.html")
    assert [(s.label, s.text) for s in document.sections] == [
        ("Port", f"# Port\n\n{ENGLISH}"),
        ("Port > Été", f"## Été\n\n{FRENCH}"),
    ]
    markdown = tmp_path / "notes.md"
    markdown.write_text(
        f"Intro line.\n\n# Port\n\n## Hours\n{ENGLISH}\n```\n# not a heading\n```\n"
        f"# **Cotisations**\n{FRENCH_2}\n",
        encoding="utf-8",
    )
    document = parse_document(markdown, "notes.md")
    assert [(s.label, s.headings) for s in document.sections] == [
        ("", ()),
        ("Port > Hours", ("Port", "Hours")),
        ("Cotisations", ("Cotisations",)),
    ]
    assert "# not a heading" in document.sections[1].text


def test_csv_with_semicolons_becomes_a_table(tmp_path: Path) -> None:
    path = tmp_path / "membres.csv"
    path.write_text("nom;ville\nÉlodie;Brest\nJean|Luc;Nantes\n", encoding="utf-8")
    [section] = parse_document(path, "membres.csv").sections
    assert section.text.split("\n") == [
        "| nom | ville |",
        "| --- | --- |",
        "| Élodie | Brest |",
        "| Jean\\|Luc | Nantes |",
    ]
    path.write_text("nom;note\nÉlodie;" + "x" * 200_000 + "\n", encoding="utf-8")
    [section] = parse_document(path, "membres.csv").sections  # a field past csv's limit
    assert section.text.startswith("nom;note\nÉlodie;xxx")


def test_plain_text_in_legacy_and_unicode_encodings(tmp_path: Path) -> None:
    for encoding, data in (
        ("utf-8-sig", FRENCH.encode("utf-8-sig")),
        ("utf-16", FRENCH.encode("utf-16")),  # with its BOM
        ("utf-16-be", b"\xfe\xff" + FRENCH.encode("utf-16-be")),
        ("cp1252", (FRENCH + "\n" + FRENCH_2 + "\n").encode("cp1252") * 3),
    ):
        path = tmp_path / f"{encoding}.txt"
        path.write_bytes(data)
        text = parse_document(path, path.name).text
        assert text.startswith(FRENCH), encoding


def test_an_html_page_in_the_charset_it_declares(tmp_path: Path) -> None:
    page = tmp_path / "vieux.htm"
    page.write_bytes(
        b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
        b"</head><body><h1>R\xe8glement</h1><p>" + FRENCH.encode("latin-1") + b"</p></body></html>"
    )
    [section] = parse_document(page, "vieux.htm").sections
    assert (section.label, section.text) == ("Règlement", f"# Règlement\n\n{FRENCH}")


def test_a_french_word_file_has_its_headings_by_style_name_not_id(tmp_path: Path) -> None:
    """French Word names its heading styles' ids "Titre1"; their names stay "heading 1".
    Deleted text (tracked changes) is left out."""
    seed = documents.docx(tmp_path / "seed.docx")
    deleted = (
        '<w:del w:id="9" w:author="A" w:date="2026-01-01T00:00:00Z"><w:r>'
        "<w:delText>mots supprimés</w:delText></w:r></w:del>"
    )
    with (
        zipfile.ZipFile(seed) as source,
        zipfile.ZipFile(tmp_path / "fr.docx", "w") as french,
    ):
        for item in source.infolist():
            data = source.read(item)
            if item.filename in ("word/document.xml", "word/styles.xml"):
                text = data.decode().replace('"Heading1"', '"Titre1"')
                text = text.replace('"Heading2"', '"Titre2"')
                text = text.replace("</w:r></w:p>", f"</w:r>{deleted}</w:p>", 1)
                data = text.encode()
            french.writestr(item, data)
    document = parse_document(tmp_path / "fr.docx", "fr.docx")
    assert [s.label for s in document.sections] == [
        "Harbour rules",
        "Harbour rules > Règles en français",
        "Prices",
    ]
    assert "supprimés" not in document.text
