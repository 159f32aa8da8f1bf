"""The database tables. Changing one needs a new migration in `migrations/versions/`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship
from sqlalchemy.types import DateTime, TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite keeps no time zone, so it is put back on read."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Who owns it: the local user until accounts exist; every query filters on it.
    owner: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    model: Mapped[str | None] = mapped_column(String(200))
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    # Without a system prompt of its own: an empty one, rather than the model's built-in one.
    remove_builtin_prompt: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Knowledge base ids whose passages are searched for each answer.
    knowledge: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Single knowledge files (document ids) searched too, whatever base they are in.
    knowledge_files: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation",
        order_by="Message.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (Index("ix_conversations_owner_updated", "owner", "updated_at"),)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # user | assistant | picture (drawn)
    content: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str | None] = mapped_column(String(200))
    # complete | stopped (the user stopped it) | error (the engine failed mid-answer)
    status: Mapped[str] = mapped_column(String(16), default="complete")
    error: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # The passages an answer was given, as cited ([1], [2]…): kept with the answer.
    citations: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    images: Mapped[list[MessageImage]] = relationship(
        back_populates="message",
        order_by="MessageImage.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class MessageImage(Base):
    """An image attached to a user message, kept as the checked bytes the user sent, or the
    picture of a `picture` message (drawn by an image model)."""

    __tablename__ = "message_images"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    size: Mapped[int] = mapped_column(Integer)
    # Loaded only when asked for: listing a conversation must not read every image.
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary))

    message: Mapped[Message] = relationship(back_populates="images")


class KnowledgeBase(Base):
    """A user's collection of documents, searched to answer with citations."""

    __tablename__ = "knowledge_bases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Every passage of a base is embedded by the same model (vectors of one size).
    embedding_model: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    documents: Mapped[list[KnowledgeDocument]] = relationship(
        back_populates="base",
        order_by="KnowledgeDocument.created_at",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    shares: Mapped[list[KnowledgeShare]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class KnowledgeShare(Base):
    """Read-only access to a knowledge base for another user."""

    __tablename__ = "knowledge_shares"

    kb_id: Mapped[str] = mapped_column(
        ForeignKey("knowledge_bases.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class KnowledgeDocument(Base):
    """An uploaded file: kept as uploaded, read into passages in the background."""

    __tablename__ = "knowledge_documents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kb_id: Mapped[str] = mapped_column(
        ForeignKey("knowledge_bases.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # queued | reading | embedding | ready | failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    format: Mapped[str | None] = mapped_column(String(16))
    pages: Mapped[int] = mapped_column(Integer, default=0)
    ocr_pages: Mapped[int] = mapped_column(Integer, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    base: Mapped[KnowledgeBase] = relationship(back_populates="documents")

    __table_args__ = (Index("ix_knowledge_documents_kb_sha", "kb_id", "sha256"),)


class KnowledgeChunk(Base):
    """A passage of a document, with where it is, to quote and cite it."""

    __tablename__ = "knowledge_chunks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("knowledge_documents.id", ondelete="CASCADE"), index=True
    )
    kb_id: Mapped[str] = mapped_column(String(32), index=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    location: Mapped[str] = mapped_column(String(300), default="")
    page: Mapped[int | None] = mapped_column(Integer)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    ocr: Mapped[bool] = mapped_column(default=False)


class StoredResponse(Base):
    """An answer of the OpenAI Responses API kept with `store` on: what it said, and every
    input item it was given (those of the responses before it first), so that a later
    request can go on from it with `previous_response_id`. Read only by its owner."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(200))
    previous_response_id: Mapped[str | None] = mapped_column(String(64))
    # The Response object as it was answered (output, usage, settings...).
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The input items, normalised to the API's item shape, with ids.
    input_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # The JSON size of both, in bytes: what this answer costs its owner's storage.
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
