"""Bad documents get a clear refusal with its code and status, and cost little doing so."""

from __future__ import annotations

import os
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from iaforall.knowledge.errors import DocumentRefused
from iaforall.knowledge.limits import DocumentLimits
from iaforall.knowledge.ocr_pages import RapidOcrLines
from iaforall.knowledge.parse import parse_document
from tests.knowledge import documents
from tests.knowledge.documents import ENGLISH, FRENCH


def refusal(path: Path, name: str | None = None, **limits: int) -> DocumentRefused:
    with pytest.raises(DocumentRefused) as caught:
        parse_document(path, name or path.name, DocumentLimits(**limits))
    return caught.value


def test_a_password_protected_pdf_is_refused_as_such(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    for algorithm in ("RC4-128", "AES-256"):
        writer = PdfWriter(clone_from=PdfReader(documents.text_pdf(tmp_path / "open.pdf")))
        writer.encrypt(user_password="secret", owner_password="owner", algorithm=algorithm)
        writer.write(tmp_path / "locked.pdf")
        error = refusal(tmp_path / "locked.pdf")
        assert (error.status, error.code) == (422, "encrypted_document")
        assert "this pdf is password-protected" in error.message.lower()


def test_a_pdf_locked_by_an_owner_password_only_is_read(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(documents.text_pdf(tmp_path / "open.pdf")))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    writer.write(tmp_path / "no-print.pdf")
    document = parse_document(tmp_path / "no-print.pdf", "no-print.pdf")
    assert document.sections[0].text == ENGLISH


def test_a_docx_zip_bomb_is_refused_before_it_inflates(tmp_path: Path) -> None:
    bomb = documents.zip_bomb_docx(tmp_path / "bomb.docx", inflated_mb=200)
    assert bomb.stat().st_size < 1_000_000
    tracemalloc.start()
    started = time.perf_counter()
    error = refusal(bomb)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (error.status, error.code) == (413, "zip_bomb")
    assert "compressed" in error.message  # its declared ratio gave it away
    assert elapsed < 1.0
    assert peak < 5_000_000
    # Under a generous ratio, the total declared size still refuses it, as early.
    error = refusal(bomb, max_zip_ratio=100_000, max_unzipped_bytes=100_000_000)
    assert (error.code, "100 MB" in error.message) == ("zip_bomb", True)


def test_a_zip_member_that_lies_about_its_size_is_stopped_at_the_lie(tmp_path: Path) -> None:
    """The central directory claims 1 kB for a member that inflates to 50 MB."""
    bomb = documents.zip_bomb_docx(tmp_path / "bomb.docx", inflated_mb=50)
    data = bytearray(bomb.read_bytes())
    with zipfile.ZipFile(bomb) as archive:
        member = archive.getinfo("word/document.xml")
    real = member.file_size.to_bytes(8, "little")
    assert data.count(real) >= 1  # zip64 sizes, in the local header and the central directory
    data = data.replace(real, (1000).to_bytes(8, "little"))
    bomb.write_bytes(bytes(data))
    tracemalloc.start()
    error = refusal(bomb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert error.status in (413, 422)
    assert error.code in ("zip_bomb", "corrupt_document")
    assert peak < 5_000_000


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = documents.text_pdf(tmp_path / "big.pdf")
    error = refusal(path, max_bytes=path.stat().st_size - 1)
    assert (error.status, error.code) == (413, "file_too_large")
    assert "MB" in error.message


@pytest.mark.parametrize(
    ("make", "name", "says"),
    [
        (documents.text_pdf, "report.docx", "content is a PDF"),
        (documents.docx, "report.pdf", "content is a Word document"),
        (documents.xlsx, "budget.pptx", "content is an Excel workbook"),
    ],
)
def test_an_extension_that_lies_about_the_content_is_refused(
    tmp_path: Path, make, name: str, says: str
) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path / f"real{Path(name).suffix}.bin")
    error = refusal(path, name)
    assert (error.status, error.code) == (415, "extension_mismatch")
    assert says in error.message and f"'{name}'" in error.message


def test_text_named_as_pdf_and_an_image_named_as_text_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes"
    text.write_text(ENGLISH, encoding="utf-8")
    error = refusal(text, "notes.pdf")
    assert (error.status, error.code) == (415, "extension_mismatch")
    image = tmp_path / "scan.png"
    documents.scan_image("x").save(image, "PNG")
    error = refusal(image, "notes.txt")
    assert (error.status, error.code) == (415, "unsupported_document_type")
    assert "PNG image" in error.message


def test_empty_documents_say_no_text_was_found(tmp_path: Path, ocr: RapidOcrLines) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert refusal(empty).code == "empty_document"
    blank = tmp_path / "blank.md"
    blank.write_text("\n  \n\t\n", encoding="utf-8")
    assert refusal(blank).code == "no_text_found"
    blank_pdf = documents.text_pdf(tmp_path / "blank.pdf", pages=[[], []])
    error = refusal(blank_pdf)
    assert (error.status, error.code) == (422, "no_text_found")
    assert "no text found" in error.message.lower()
    import docx

    docx.Document().save(str(tmp_path / "blank.docx"))
    assert refusal(tmp_path / "blank.docx").code == "no_text_found"
    white = tmp_path / "white.pdf"
    documents.scan_image().save(white, "PDF")
    with pytest.raises(DocumentRefused) as caught:
        parse_document(white, "white.pdf", read_image=ocr)
    assert caught.value.code == "no_text_found"


def test_text_in_an_encoding_we_cannot_recognise_is_refused(tmp_path: Path) -> None:
    noise = bytes(b % 127 + 129 for b in os.urandom(4000))  # high bytes, no NUL, no pattern
    path = tmp_path / "mystery.txt"
    path.write_bytes(noise)
    error = refusal(path)
    assert (error.status, error.code) == (422, "unknown_encoding")
    assert "UTF-8" in error.message
    # a stray byte or two in UTF-8 text does not cost the whole document
    mixed = tmp_path / "mixed.txt"
    mixed.write_bytes((FRENCH + "\n").encode() * 30 + b"caf\xe9\n" + "Noël\n".encode())
    text = parse_document(mixed, "mixed.txt").text
    assert text.startswith(FRENCH) and text.endswith("caf\ufffd\nNoël")


def test_a_truncated_or_corrupt_pdf_is_refused(tmp_path: Path) -> None:
    whole = documents.text_pdf(tmp_path / "whole.pdf").read_bytes()
    cases = {
        "half.pdf": whole[: len(whole) // 2],
        "header.pdf": whole[:20],
        "garbage.pdf": b"%PDF-1.7\n" + os.urandom(3000),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        error = refusal(tmp_path / name)
        assert error.status == 422, name
        assert error.code in ("corrupt_document", "no_text_found"), name


def test_a_truncated_or_corrupt_docx_is_refused(tmp_path: Path) -> None:
    whole = documents.docx(tmp_path / "whole.docx").read_bytes()
    (tmp_path / "half.docx").write_bytes(whole[: len(whole) // 2])
    error = refusal(tmp_path / "half.docx")
    assert (error.status, error.code) == (422, "corrupt_document")
    with (
        zipfile.ZipFile(tmp_path / "whole.docx") as source,
        zipfile.ZipFile(tmp_path / "broken.docx", "w") as broken,
    ):
        for item in source.infolist():
            data = source.read(item)
            broken.writestr(item, data[:-40] if item.filename == "word/document.xml" else data)
    error = refusal(tmp_path / "broken.docx")
    assert (error.status, error.code) == (422, "corrupt_document")


def test_page_and_text_limits_refuse_before_the_slow_part(tmp_path: Path) -> None:
    path = documents.text_pdf(tmp_path / "long.pdf", pages=[[ENGLISH]] * 5)
    error = refusal(path, max_pages=4)
    assert (error.status, error.code) == (413, "too_many_pages")
    error = refusal(path, max_chars=len(ENGLISH) * 3)
    assert (error.status, error.code) == (413, "too_much_text")
    for make in (documents.pptx, documents.xlsx):  # two slides, two sheets
        error = refusal(make(tmp_path / f"two.{make.__name__}"), max_pages=1)
        assert (error.status, error.code) == (413, "too_many_pages")
    error = refusal(documents.docx(tmp_path / "words.docx"), max_chars=100)
    assert (error.status, error.code) == (413, "too_much_text")
    error = refusal(documents.xlsx(tmp_path / "cells.xlsx"), max_chars=60)
    assert (error.status, error.code) == (413, "too_much_text")
    text = tmp_path / "long.txt"
    text.write_text(FRENCH * 100, encoding="utf-8")
    assert refusal(text, max_chars=len(FRENCH) * 10).code == "too_much_text"
    scans = documents.scanned_pdf(tmp_path / "scans.pdf", ("a",), ("b",), ("c",))
    never = []
    with pytest.raises(DocumentRefused) as caught:
        parse_document(scans, "scans.pdf", DocumentLimits(max_ocr_pages=2), read_image=never.append)
    assert (caught.value.status, caught.value.code) == (413, "too_many_scanned_pages")
    assert never == []


def test_a_scan_whose_image_cannot_be_decoded_is_listed_as_unread(
    tmp_path: Path, ocr: RapidOcrLines
) -> None:
    """JBIG2 (common in scanners' PDFs) needs the jbig2dec program, which is not here."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject

    writer = PdfWriter()
    for part in (
        documents.text_pdf(tmp_path / "text.pdf", pages=[[ENGLISH]]),
        documents.scanned_pdf(tmp_path / "scan.pdf", (FRENCH,)),
    ):
        for page in PdfReader(part).pages:
            writer.add_page(page)
    image = writer.pages[1]["/Resources"]["/XObject"]["/image"].get_object()
    image[NameObject("/Filter")] = NameObject("/JBIG2Decode")
    writer.write(tmp_path / "jbig2.pdf")
    document = parse_document(tmp_path / "jbig2.pdf", "jbig2.pdf", read_image=ocr)
    assert [s.text for s in document.sections] == [ENGLISH]
    assert (document.unread_pages, document.ocr_pages) == ((2,), 0)
    only_scan = PdfWriter(clone_from=tmp_path / "jbig2.pdf")
    only_scan.remove_page(0)
    only_scan.write(tmp_path / "jbig2-only.pdf")
    with pytest.raises(DocumentRefused, match="JBIG2") as caught:
        parse_document(tmp_path / "jbig2-only.pdf", "jbig2-only.pdf", read_image=ocr)
    assert caught.value.code == "no_text_found"


@pytest.mark.parametrize(
    "make", [documents.text_pdf, documents.docx, documents.pptx, documents.xlsx]
)
def test_damaged_copies_are_read_or_refused_never_a_crash(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    """Flipped bytes, cuts and spliced noise: every outcome is a text or a DocumentRefused."""
    import random

    seed = make(tmp_path / f"seed.{make.__name__.replace('text_', '')}")
    data = seed.read_bytes()
    rng = random.Random(6)
    for attempt in range(25):
        damaged = bytearray(data)
        if attempt % 3 == 0:
            for _ in range(rng.randint(1, 20)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        elif attempt % 3 == 1:
            damaged = damaged[: rng.randrange(len(damaged))]
        else:
            at = rng.randrange(len(damaged))
            damaged[at : at + rng.randint(1, 200)] = rng.randbytes(rng.randint(0, 200))
        path = tmp_path / f"damaged{seed.suffix}"
        path.write_bytes(bytes(damaged))
        try:
            parse_document(path, path.name)
        except DocumentRefused as refused:
            assert refused.status in (413, 415, 422)
