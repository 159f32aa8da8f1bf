"""Knowledge bases, documents and conversations have ids of their own types: mypy refuses one
for another in the store and knowledge services (at run time they are all plain strings)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

import iaforall
from iaforall.core.types import ConversationId, DocumentId, KnowledgeBaseId

SOURCE = Path(iaforall.__file__).parents[1]

SWAPPED = """
from iaforall.core.types import ConversationId, DocumentId, KnowledgeBaseId
from iaforall.knowledge.bases import KnowledgeBases
from iaforall.knowledge.index import KnowledgeIndex
from iaforall.store.conversations import Conversations


def mixed_up(bases: KnowledgeBases, index: KnowledgeIndex, chats: Conversations) -> None:
    kb, doc, chat = KnowledgeBaseId("kb"), DocumentId("doc"), ConversationId("chat")
    bases.path_of(kb, doc)  # right
    chats.get("me", chat)  # right
    bases.path_of(doc, kb)  # wrong, both
    index.count(doc)  # wrong
    chats.get("me", kb)  # wrong
    bases.set_status(chat, "ready")  # wrong
"""


def test_one_kind_of_id_is_refused_for_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYPYPATH", str(SOURCE))  # this checkout's package, first
    program = tmp_path / "mixed_up.py"
    program.write_text(SWAPPED)
    out, _, status = api.run(
        [
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(SOURCE.parent / ".mypy_cache"),
            str(program),
        ]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    wrong = [n for n, line in enumerate(SWAPPED.splitlines(), 1) if "# wrong" in line]
    assert status == 1 and lines == wrong, out
    assert all("[arg-type]" in line for line in errors), out


def test_typed_ids_are_plain_strings_at_run_time() -> None:
    assert type(KnowledgeBaseId("a")) is str
    assert DocumentId("a") == ConversationId("a") == "a"
