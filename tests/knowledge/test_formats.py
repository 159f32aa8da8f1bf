"""The content decides what a document is; the extension may only agree with it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from iaforall.knowledge.errors import UnreadableDocument, UnsupportedDocument
from iaforall.knowledge.formats import Format, sniff
from iaforall.knowledge.limits import DocumentLimits
from iaforall.knowledge.parse import parse_document
from tests.knowledge import documents
from tests.knowledge.documents import ENGLISH


def test_each_format_is_known_by_its_content_whatever_its_name(tmp_path: Path) -> None:
    made = {
        Format.PDF: documents.text_pdf(tmp_path / "a"),
        Format.DOCX: documents.docx(tmp_path / "b"),
        Format.PPTX: documents.pptx(tmp_path / "c"),
        Format.XLSX: documents.xlsx(tmp_path / "d"),
    }
    for format, path in made.items():
        assert sniff(path, "upload") == format  # no extension: the content alone
        assert sniff(path, f"upload.{format}") == format
        assert sniff(path, f"UPLOAD.{format.upper()}") == format


def test_text_formats_follow_the_extension_and_html_is_recognised_without_one(
    tmp_path: Path,
) -> None:
    page = tmp_path / "page"
    page.write_text("<!DOCTYPE html>\n<html><body><p>hi</p></body></html>", encoding="utf-8")
    assert sniff(page, "page") == Format.HTML
    assert sniff(page, "page.txt") == Format.TEXT  # shown as the text it is, if so named
    assert sniff(page, "page.md") == Format.MARKDOWN
    utf16 = tmp_path / "utf16"
    utf16.write_bytes(ENGLISH.encode("utf-16-le"))  # NUL bytes, but text: no BOM either
    assert sniff(utf16, "notes.csv") == Format.CSV
    assert parse_document(utf16, "notes.txt").text == ENGLISH


def test_old_and_encrypted_office_files_and_other_zips_are_named_for_what_they_are(
    tmp_path: Path,
) -> None:
    ole = tmp_path / "ole"
    ole.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    with pytest.raises(UnsupportedDocument, match=r"old Office file"):
        sniff(ole, "letter.doc")
    with pytest.raises(UnreadableDocument, match="password-protected") as caught:
        sniff(ole, "letter.docx")  # Office encrypts a .docx into this container
    assert caught.value.code == "encrypted_document"
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("photo.txt", "hello")
    with pytest.raises(UnsupportedDocument, match="not a DOCX, PPTX or XLSX") as unsupported:
        sniff(archive, "photos.docx")
    assert unsupported.value.status == 415


def test_an_office_part_with_a_dtd_is_refused_before_any_parser_sees_it(tmp_path: Path) -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<w:document>&lol2;</w:document>"
    )
    seed = documents.docx(tmp_path / "seed.docx")
    with zipfile.ZipFile(seed) as source, zipfile.ZipFile(tmp_path / "lol.docx", "w") as lol:
        for item in source.infolist():
            data = laughs if item.filename == "word/document.xml" else source.read(item)
            lol.writestr(item, data)
    with pytest.raises(UnreadableDocument, match="DTD"):
        parse_document(tmp_path / "lol.docx", "lol.docx", DocumentLimits())
