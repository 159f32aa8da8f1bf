"""Answers with citations: the passages of a user's knowledge bases that best match a question
(by meaning and by words), numbered, and given to the model inside the user's message under a
label that asks it to cite them as [1], [2]… The same text is what "what the model sees" shows.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from iaforall.core.errors import InvalidRequest
from iaforall.core.types import ChatRequest, DocumentId, KnowledgeBaseId, UserId
from iaforall.embeddings import Embeddings
from iaforall.knowledge.bases import KnowledgeBases
from iaforall.knowledge.index import KnowledgeIndex, Mode

QUOTE_CHARS = 240
MAX_BASES = 16


@dataclass(frozen=True)
class Citation:
    """One passage given to the model, as the answer's sources list it."""

    number: int
    kb_id: KnowledgeBaseId
    document_id: DocumentId
    document: str
    location: str
    page: int | None
    quote: str
    text: str
    score: float
    ocr: bool = False

    @property
    def label(self) -> str:
        return f"{self.document}, {self.location}" if self.location else self.document

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= QUOTE_CHARS:
        return flat
    return flat[:QUOTE_CHARS].rsplit(" ", 1)[0] + " …"


@dataclass
class Retriever:
    bases: KnowledgeBases
    index: KnowledgeIndex
    embeddings: Embeddings

    async def search(
        self,
        user: UserId,
        kb_ids: Sequence[KnowledgeBaseId],
        query: str,
        *,
        k: int = 5,
        mode: Mode = "hybrid",
        documents: Sequence[DocumentId] = (),
    ) -> list[Citation]:
        """The k best passages of these bases, and of these single documents, each readable by
        `user`, for `query`."""
        if len(set(kb_ids)) > MAX_BASES or len(set(documents)) > MAX_BASES:
            raise InvalidRequest(
                f"At most {MAX_BASES} knowledge bases and {MAX_BASES} files can be searched at "
                "once.",
                param="knowledge",
            )
        query = query.strip()
        if not (kb_ids or documents) or not query:
            return []
        found = await self._search(user, kb_ids, query, k, mode) if kb_ids else []
        if documents:
            found += await self._search_documents(user, documents, query, k, mode)
            found.sort(key=lambda c: c.score, reverse=True)
            found = list({(c.document_id, c.text): c for c in found}.values())[:k]
        return [replace(c, number=n) for n, c in enumerate(found, 1)]

    async def _search_documents(
        self, user: UserId, documents: Sequence[DocumentId], query: str, k: int, mode: Mode
    ) -> list[Citation]:
        """The best passages of single files: their bases searched more widely, then only
        these files' passages kept."""
        wanted = await asyncio.to_thread(self.bases.documents_by_id, user, documents)
        ids = {d.id for d in wanted}
        bases = list(dict.fromkeys(d.kb_id for d in wanted))
        found = await self._search(user, bases, query, max(10 * k, 50), mode)
        return [c for c in found if c.document_id in ids][:k]

    async def _search(
        self, user: UserId, kb_ids: Sequence[KnowledgeBaseId], query: str, k: int, mode: Mode
    ) -> list[Citation]:
        bases = await asyncio.to_thread(self.bases.readable, user, kb_ids)
        by_model: dict[str, list[KnowledgeBaseId]] = defaultdict(list)
        for base in bases:
            by_model[base.embedding_model].append(base.id)
        hits = []
        for model, ids in by_model.items():
            vector = None
            if mode != "keyword":  # one short text: the server's own work, not a user's turn
                vector = (await self.embeddings.embed(model, [query], user=None)).vectors[0]
            hits += await asyncio.to_thread(self.index.search, ids, vector, query, k, mode)
        hits.sort(key=lambda h: h.score, reverse=True)  # one model: already in order
        hits = hits[:k]
        rows = await asyncio.to_thread(self.bases.passages, [h.chunk_id for h in hits])
        found: list[Citation] = []
        for hit in hits:
            row = rows.get(hit.chunk_id)
            if row is None:  # deleted since it was indexed
                continue
            found.append(
                Citation(
                    len(found) + 1,
                    row.kb_id,
                    row.document_id,
                    row.document,
                    row.location,
                    row.page,
                    _quote(row.text),
                    row.text,
                    round(hit.score, 4),
                    row.ocr,
                )
            )
        return found


SOURCES_INTRO = (
    "[Sources found in the knowledge bases for this question. Answer from them when they "
    "help, and cite each one you use by its number, like [1]. If they do not hold the answer, "
    "say so.]"
)


def sources_text(citations: Sequence[Citation]) -> str:
    blocks = [SOURCES_INTRO]
    for c in citations:
        scanned = " (read from a scan by OCR)" if c.ocr else ""
        blocks.append(f"[{c.number}] {c.label}{scanned}:\n{c.text}")
    return "\n\n".join(blocks)


def with_sources(chat: ChatRequest, citations: Sequence[Citation]) -> ChatRequest:
    """The chat with the sources placed before the last user message's text."""
    if not citations:
        return chat
    messages = list(chat.messages)
    last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last is None:
        return chat
    message = messages[last]
    sources = sources_text(citations)
    content = message.get("content")
    if isinstance(content, list):
        parts = [{"type": "text", "text": sources + "\n\n[Question]"}, *content]
        messages[last] = {**message, "content": parts}
    else:
        messages[last] = {**message, "content": f"{sources}\n\n[Question]\n{content or ''}"}
    return replace(chat, messages=tuple(messages))


def question_of(chat: ChatRequest) -> str:
    """The text of the last user message: what the passages are searched for."""
    for message in reversed(chat.messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return ""
