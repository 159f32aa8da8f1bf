"""Knowledge bases, their documents and passages, always read on behalf of a user: the owner
may change a base, people it is shared with may only read it. Calls block: run them off the
event loop. Files are kept as uploaded, one per document, under `files_dir/<base>/<document>`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from iaforall.core.errors import Forbidden, NotFound
from iaforall.core.ids import new_id
from iaforall.core.types import DocumentId, KnowledgeBaseId
from iaforall.store.database import Database
from iaforall.store.tables import (
    KnowledgeBase,
    KnowledgeChunk,
    KnowledgeDocument,
    KnowledgeShare,
    utcnow,
)

WORKING = ("queued", "reading", "embedding")  # a document not yet ready nor failed


@dataclass(frozen=True)
class BaseView:
    id: KnowledgeBaseId
    owner: str
    name: str
    description: str
    embedding_model: str
    created_at: datetime
    updated_at: datetime
    documents: int = 0
    chunks: int = 0
    shared_with: tuple[str, ...] = ()

    def writable_by(self, user: str) -> bool:
        return self.owner == user


@dataclass(frozen=True)
class DocumentView:
    id: DocumentId
    kb_id: KnowledgeBaseId
    name: str
    size: int
    sha256: str
    status: str
    progress: float
    error: str | None
    error_code: str | None
    format: str | None
    pages: int
    ocr_pages: int
    chunks: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewChunk:
    id: str
    position: int
    text: str
    location: str
    page: int | None
    start: int
    end: int
    ocr: bool


@dataclass(frozen=True)
class PassageRow:
    """A stored passage with the document it comes from."""

    id: str
    kb_id: KnowledgeBaseId
    document_id: DocumentId
    document: str
    text: str
    location: str
    page: int | None
    ocr: bool


def _base_view(b: KnowledgeBase, documents: int = 0, chunks: int = 0) -> BaseView:
    return BaseView(
        KnowledgeBaseId(b.id),
        b.owner,
        b.name,
        b.description,
        b.embedding_model,
        b.created_at,
        b.updated_at,
        documents,
        chunks,
        tuple(sorted(s.user_id for s in b.shares)),
    )


def _document_view(d: KnowledgeDocument) -> DocumentView:
    return DocumentView(
        DocumentId(d.id),
        KnowledgeBaseId(d.kb_id),
        d.name,
        d.size,
        d.sha256,
        d.status,
        d.progress,
        d.error,
        d.error_code,
        d.format,
        d.pages,
        d.ocr_pages,
        d.chunks,
        d.created_at,
        d.updated_at,
    )


class KnowledgeBases:
    def __init__(self, database: Database, files_dir: Path) -> None:
        self._db = database
        self.files_dir = files_dir

    # -- bases ----------------------------------------------------------------------------

    def _visible(
        self, session: Session, user: str, kb_id: KnowledgeBaseId, *, write: bool
    ) -> KnowledgeBase:
        base = session.get(KnowledgeBase, kb_id)
        readers = {s.user_id for s in base.shares} if base is not None else set()
        if base is None or (base.owner != user and user not in readers):
            raise NotFound(f"There is no knowledge base '{kb_id}'.")
        if write and base.owner != user:
            raise Forbidden(
                f"The knowledge base '{base.name}' is shared with you to read only; only its "
                "owner can change it."
            )
        return base

    def create(self, owner: str, name: str, description: str, embedding_model: str) -> BaseView:
        now = utcnow()
        base = KnowledgeBase(
            id=new_id(),
            owner=owner,
            name=name,
            description=description,
            embedding_model=embedding_model,
            created_at=now,
            updated_at=now,
        )
        with self._db.session() as session:
            session.add(base)
            session.flush()
            return _base_view(base)

    def all_for(self, user: str) -> list[BaseView]:
        """The user's own bases and those shared with them, most recently changed first."""
        with self._db.session() as session:
            shared = select(KnowledgeShare.kb_id).where(KnowledgeShare.user_id == user)
            bases = session.scalars(
                select(KnowledgeBase)
                .where(or_(KnowledgeBase.owner == user, KnowledgeBase.id.in_(shared)))
                .order_by(KnowledgeBase.updated_at.desc())
            ).all()
            counts = self._counts(session, [b.id for b in bases])
            return [_base_view(b, *counts.get(b.id, (0, 0))) for b in bases]

    def _counts(self, session: Session, ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        if not ids:
            return {}
        rows = session.execute(
            select(
                KnowledgeDocument.kb_id,
                func.count(),
                func.coalesce(func.sum(KnowledgeDocument.chunks), 0),
            )
            .where(KnowledgeDocument.kb_id.in_(ids))
            .group_by(KnowledgeDocument.kb_id)
        ).all()
        return {kb: (int(n), int(chunks)) for kb, n, chunks in rows}

    def get(self, user: str, kb_id: KnowledgeBaseId, *, write: bool = False) -> BaseView:
        """The base, if `user` may read it (or, with `write`, change it)."""
        with self._db.session() as session:
            base = self._visible(session, user, kb_id, write=write)
            return _base_view(base, *self._counts(session, [kb_id]).get(kb_id, (0, 0)))

    def readable(self, user: str, kb_ids: Iterable[KnowledgeBaseId]) -> list[BaseView]:
        """These bases, each checked (NotFound for one the user cannot read)."""
        return [self.get(user, kb_id) for kb_id in dict.fromkeys(kb_ids)]

    def update(self, user: str, kb_id: KnowledgeBaseId, **changes: Any) -> BaseView:
        with self._db.session() as session:
            base = self._visible(session, user, kb_id, write=True)
            for name, value in changes.items():
                setattr(base, name, value)
            base.updated_at = utcnow()
            session.flush()
            return _base_view(base, *self._counts(session, [kb_id]).get(kb_id, (0, 0)))

    def delete(self, user: str, kb_id: KnowledgeBaseId) -> None:
        with self._db.session() as session:
            session.delete(self._visible(session, user, kb_id, write=True))
            session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.kb_id == kb_id))
        shutil.rmtree(self.files_dir / kb_id, ignore_errors=True)

    def share(self, user: str, kb_id: KnowledgeBaseId, other: str) -> BaseView:
        with self._db.session() as session:
            base = self._visible(session, user, kb_id, write=True)
            if other != base.owner and other not in {s.user_id for s in base.shares}:
                base.shares.append(KnowledgeShare(kb_id=kb_id, user_id=other))
            session.flush()
        return self.get(user, kb_id)

    def unshare(self, user: str, kb_id: KnowledgeBaseId, other: str) -> BaseView:
        with self._db.session() as session:
            self._visible(session, user, kb_id, write=True)
            session.execute(
                delete(KnowledgeShare).where(
                    KnowledgeShare.kb_id == kb_id, KnowledgeShare.user_id == other
                )
            )
        return self.get(user, kb_id)

    # -- documents ------------------------------------------------------------------------

    def path_of(self, kb_id: KnowledgeBaseId, document_id: DocumentId) -> Path:
        return self.files_dir / kb_id / document_id

    def same_file(self, user: str, kb_id: KnowledgeBaseId, sha256: str) -> DocumentView | None:
        """A document of this base with these bytes that is ready or on its way (a failed
        one is tried again)."""
        with self._db.session() as session:
            self._visible(session, user, kb_id, write=True)
            found = session.scalar(
                select(KnowledgeDocument).where(
                    KnowledgeDocument.kb_id == kb_id,
                    KnowledgeDocument.sha256 == sha256,
                    KnowledgeDocument.status != "failed",
                )
            )
            return None if found is None else _document_view(found)

    def add_document(
        self, user: str, kb_id: KnowledgeBaseId, *, name: str, size: int, sha256: str, file: Path
    ) -> DocumentView:
        """A new queued document; `file` (already on disk) moves under the base's folder."""
        with self._db.session() as session:
            base = self._visible(session, user, kb_id, write=True)
            now = utcnow()
            document = KnowledgeDocument(
                id=new_id(),
                kb_id=kb_id,
                name=name,
                size=size,
                sha256=sha256,
                status="queued",
                progress=0.0,
                pages=0,
                ocr_pages=0,
                chunks=0,
                created_at=now,
                updated_at=now,
            )
            session.add(document)
            base.updated_at = now
            target = self.path_of(kb_id, DocumentId(document.id))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(file, target)
            session.flush()
            return _document_view(document)

    def documents(self, user: str, kb_id: KnowledgeBaseId) -> list[DocumentView]:
        with self._db.session() as session:
            base = self._visible(session, user, kb_id, write=False)
            return [_document_view(d) for d in base.documents]

    def document(self, user: str, kb_id: KnowledgeBaseId, document_id: DocumentId) -> DocumentView:
        with self._db.session() as session:
            self._visible(session, user, kb_id, write=False)
            found = session.get(KnowledgeDocument, document_id)
            if found is None or found.kb_id != kb_id:
                raise NotFound(f"There is no document '{document_id}' in this knowledge base.")
            return _document_view(found)

    def documents_by_id(self, user: str, document_ids: Iterable[DocumentId]) -> list[DocumentView]:
        """These documents, wherever they are, each in a base `user` may read (else NotFound)."""
        found = []
        with self._db.session() as session:
            for document_id in dict.fromkeys(document_ids):
                document = session.get(KnowledgeDocument, document_id)
                try:
                    if document is None:
                        raise NotFound("")
                    self._visible(session, user, KnowledgeBaseId(document.kb_id), write=False)
                except NotFound:
                    raise NotFound(f"There is no document '{document_id}'.") from None
                found.append(_document_view(document))
        return found

    def delete_document(self, user: str, kb_id: KnowledgeBaseId, document_id: DocumentId) -> None:
        self.document(user, kb_id, document_id)  # visible, and in this base
        with self._db.session() as session:
            self._visible(session, user, kb_id, write=True)
            session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id == document_id))
            session.execute(delete(KnowledgeDocument).where(KnowledgeDocument.id == document_id))
        self.path_of(kb_id, document_id).unlink(missing_ok=True)

    def chunk_ids(self, document_id: DocumentId) -> list[str]:
        with self._db.session() as session:
            return list(
                session.scalars(
                    select(KnowledgeChunk.id).where(KnowledgeChunk.document_id == document_id)
                )
            )

    # -- the ingestion's side -------------------------------------------------------------

    def working(self) -> list[DocumentView]:
        """Documents left queued or half-read (by a restart): to read again, oldest first."""
        with self._db.session() as session:
            found = session.scalars(
                select(KnowledgeDocument)
                .where(KnowledgeDocument.status.in_(WORKING))
                .order_by(KnowledgeDocument.created_at)
            )
            return [_document_view(d) for d in found]

    def owner_of(self, kb_id: KnowledgeBaseId) -> tuple[str, str] | None:
        """(owner, embedding model) of a base, or None when it is gone."""
        with self._db.session() as session:
            base = session.get(KnowledgeBase, kb_id)
            return None if base is None else (base.owner, base.embedding_model)

    def set_status(self, document_id: DocumentId, status: str, **fields: Any) -> bool:
        """False when the document is gone (deleted while it was read)."""
        with self._db.session() as session:
            done = session.execute(
                update(KnowledgeDocument)
                .where(KnowledgeDocument.id == document_id)
                .values(status=status, updated_at=utcnow(), **fields)
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def save_chunks(
        self, document_id: DocumentId, kb_id: KnowledgeBaseId, chunks: Sequence[NewChunk]
    ) -> bool:
        """The document's passages, all at once, and the document ready; False (nothing
        stored) when the document was deleted meanwhile."""
        with self._db.session() as session:
            document = session.get(KnowledgeDocument, document_id)
            if document is None:
                return False
            session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id == document_id))
            session.add_all(
                KnowledgeChunk(document_id=document_id, kb_id=kb_id, **vars(c)) for c in chunks
            )
            document.status = "ready"
            document.progress = 1.0
            document.chunks = len(chunks)
            document.updated_at = utcnow()
            return True

    def passages(self, chunk_ids: Sequence[str]) -> dict[str, PassageRow]:
        if not chunk_ids:
            return {}
        with self._db.session() as session:
            rows = session.execute(
                select(KnowledgeChunk, KnowledgeDocument.name)
                .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
                .where(KnowledgeChunk.id.in_(chunk_ids))
            ).all()
            return {
                c.id: PassageRow(
                    c.id,
                    KnowledgeBaseId(c.kb_id),
                    DocumentId(c.document_id),
                    name,
                    c.text,
                    c.location,
                    c.page,
                    c.ocr,
                )
                for c, name in rows
            }
