"""Passages follow the document's structure, overlap cleanly, and point back to their text."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from iaforall.knowledge.chunk import Chunk, chunk_document, spans
from iaforall.knowledge.document import ParsedDocument, Section, assemble
from iaforall.knowledge.formats import Format
from iaforall.knowledge.parse import parse_document
from tests.knowledge import documents
from tests.knowledge.documents import ENGLISH, FRENCH, FRENCH_2

SENTENCES = [f"Sentence number {i} says something short about the harbour." for i in range(60)]


def long_document() -> ParsedDocument:
    paragraphs = [" ".join(SENTENCES[i : i + 6]) for i in range(0, 60, 6)]
    return assemble(
        "long.md",
        Format.MARKDOWN,
        [
            Section("Intro", "# Intro\n\n" + "\n\n".join(paragraphs[:5]), headings=("Intro",)),
            Section("Rest", "# Rest\n\n" + "\n\n".join(paragraphs[5:]), headings=("Rest",)),
        ],
    )


def check_offsets(document: ParsedDocument, chunks: list[Chunk]) -> None:
    for chunk in chunks:
        assert document.text[chunk.start : chunk.end] == chunk.text
        section = document.sections[chunk.section]
        assert section.start <= chunk.start < chunk.end <= section.end
        assert chunk.location == section.label


def test_each_passage_is_exactly_its_slice_of_the_document() -> None:
    document = long_document()
    chunks = chunk_document(document, size=500, overlap=100)
    check_offsets(document, chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(len(c.text) <= 500 for c in chunks)
    assert all(len(c.text) >= 250 for c in chunks[:-1] if c.section == chunks[c.index + 1].section)


def test_passages_never_cross_a_section_and_cover_all_of_it() -> None:
    document = long_document()
    chunks = chunk_document(document, size=400, overlap=0)
    for number, section in enumerate(document.sections):
        mine = [c for c in chunks if c.section == number]
        assert mine[0].headings == section.headings
        # without overlap, the passages put end to end are the section, white space aside
        assert " ".join(c.text for c in mine).split() == section.text.split()


def test_passages_end_at_sentences_and_overlap_from_a_sentence_start() -> None:
    document = long_document()
    chunks = chunk_document(document, size=600, overlap=150)
    for before, after in pairwise(chunks):
        if before.section != after.section:
            continue
        assert before.text.endswith(".")
        assert after.text.startswith("Sentence number")
        assert after.start < before.end  # they overlap
        assert before.end - after.start <= 150


def test_a_word_longer_than_a_passage_is_cut_where_it_must() -> None:
    # no clean place to start an overlap inside a word: none rather than half a word
    assert spans("x" * 250, 100, 20) == [(0, 100), (100, 200), (200, 250)]
    assert spans("   \n  ", 100, 20) == []


def test_small_overlap_or_size_is_kept_sane() -> None:
    document = long_document()
    with pytest.raises(ValueError, match="at least 50"):
        chunk_document(document, size=10)
    chunks = chunk_document(document, size=200, overlap=10_000)  # capped at half a passage
    check_offsets(document, chunks)
    assert len(chunks) < 40


def test_real_documents_give_cited_passages(tmp_path: Path) -> None:
    pdf = parse_document(documents.text_pdf(tmp_path / "port.pdf"), "port.pdf")
    chunks = chunk_document(pdf, size=100, overlap=30)
    check_offsets(pdf, chunks)
    french = [c for c in chunks if c.page == 2]
    assert [c.text for c in french] == [FRENCH, FRENCH_2]
    assert french[0].citation == "port.pdf, page 2"
    assert french[0].quote(40) == "Le gardien du phare note chaque navire …"
    word = parse_document(documents.docx(tmp_path / "rules.docx"), "rules.docx")
    chunks = chunk_document(word)
    check_offsets(word, chunks)
    assert chunks[1].citation == "rules.docx, Harbour rules > Règles en français"
    assert chunks[1].embedding_text == (
        f"Harbour rules > Règles en français\n## Règles en français\n\n{FRENCH}"
    )
    assert chunks[0].embedding_text == f"# Harbour rules\n\n{ENGLISH}"  # its heading is in it


def test_a_passage_inside_a_table_carries_the_table_header(tmp_path: Path) -> None:
    path = tmp_path / "ships.csv"
    rows = [f"Ship {i};Brest;{i * 3} tonnes" for i in range(60)]
    path.write_text("name;port;cargo\n" + "\n".join(rows) + "\n", encoding="utf-8")
    document = parse_document(path, "ships.csv")
    chunks = chunk_document(document, size=300, overlap=0)
    check_offsets(document, chunks)
    assert chunks[0].table_header == ""  # its header is in it
    assert chunks[0].text.startswith("| name | port | cargo |")
    for chunk in chunks[1:]:
        assert chunk.table_header == "| name | port | cargo |"
        assert chunk.text.startswith("| Ship ")
        assert chunk.embedding_text == f"| name | port | cargo |\n{chunk.text}"
