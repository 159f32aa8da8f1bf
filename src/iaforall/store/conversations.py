"""Conversations and their messages, always read and written on behalf of their owner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import delete, func, literal_column, or_, select
from sqlalchemy.orm import Session, selectinload, undefer
from sqlalchemy.sql import ColumnElement

from iaforall.core.errors import InvalidRequest, NotFound
from iaforall.core.folding import combining_marks_class, find_folded, fold, strip_marks
from iaforall.core.ids import new_id
from iaforall.core.types import ConversationId, DocumentId, KnowledgeBaseId, Usage
from iaforall.store.database import FOLD_FUNCTION, Database
from iaforall.store.tables import Conversation, Message, MessageImage, utcnow

Action = Literal["send", "regenerate", "edit"]
TITLE_LENGTH = 60
# A picture drawn by an image model for the conversation (`content` is its prompt, `model` the
# image model, one image): shown and kept with the rest, never given to the chat model.
PICTURE = "picture"


@dataclass(frozen=True)
class ImageRef:
    """An attached image without its bytes (those are read only when needed)."""

    id: str
    media_type: str
    name: str
    size: int


@dataclass(frozen=True)
class NewImage:
    """An image to attach to a new message: checked bytes and what they are."""

    media_type: str
    name: str
    data: bytes
    id: str = field(default_factory=lambda: new_id())

    @property
    def ref(self) -> ImageRef:
        return ImageRef(self.id, self.media_type, self.name, len(self.data))


@dataclass(frozen=True)
class MessageView:
    id: str
    role: str
    content: str
    model: str | None
    status: str
    error: str | None
    usage: Usage | None
    created_at: datetime
    images: tuple[ImageRef, ...] = ()
    citations: tuple[dict[str, Any], ...] = ()  # the passages an answer was given


@dataclass(frozen=True)
class ConversationView:
    id: ConversationId
    title: str
    model: str | None
    system_prompt: str
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    messages: tuple[MessageView, ...] = ()
    message_count: int = 0
    snippet: str | None = None
    knowledge: tuple[KnowledgeBaseId, ...] = ()  # bases searched for each answer
    knowledge_files: tuple[DocumentId, ...] = ()  # and single files
    remove_builtin_prompt: bool = False  # no system prompt: an empty one, not the model's


@dataclass(frozen=True)
class NewMessage:
    """A message to store, as an import or a test gives it."""

    role: str
    content: str
    model: str | None = None
    status: str = "complete"
    error: str | None = None
    created_at: datetime | None = None
    images: tuple[NewImage, ...] = ()


class Said(NamedTuple):
    """One message of the history the model is given; `images` are ImageRef ids."""

    role: str
    content: str
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class Turn:
    """What answering again means for a conversation: keep its first `keep` messages, then
    add `user` (if any) as the new last user message, with `images` (new ones, or those of
    the message an edit replaces). Nothing changes until `begin_turn`."""

    keep: int
    user: str | None
    history: tuple[Said, ...] = field(default=())
    images: tuple[ImageRef | NewImage, ...] = ()


def plan_turn(
    messages: Sequence[MessageView],
    action: Action,
    content: str | None,
    images: Sequence[NewImage] | None = None,
) -> Turn:
    """Pure: which messages the answer builds on, for a send, a regenerate or an edit. An
    edit without `images` keeps the images of the message it replaces."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    last_user = users[-1] if users else -1
    text = (content or "").strip()
    attached: tuple[ImageRef | NewImage, ...] = tuple(images or ())
    if action == "send":
        if not text and not attached:
            raise InvalidRequest("The message is empty. Type something to send.", param="content")
        keep, user = len(messages), content or ""
    elif last_user < 0:
        raise InvalidRequest(
            f"There is no message of yours to {action} in this conversation yet.", param="action"
        )
    elif action == "regenerate":
        keep, user = last_user + 1, None
    else:
        if images is None:
            attached = messages[last_user].images
        if not text and not attached:
            raise InvalidRequest("The edited message is empty.", param="content")
        keep, user = last_user, content or ""
    history = history_of(messages[:keep])
    if user is None:
        attached = ()
    else:
        history.append(Said("user", user, tuple(i.id for i in attached)))
    return Turn(keep, user, tuple(history), attached)


def history_of(messages: Sequence[MessageView]) -> list[Said]:
    """The messages the chat model is given: not the pictures (an image model drew them, not
    it), nor the empty ones."""
    return [
        Said(m.role, m.content, tuple(i.id for i in m.images))
        for m in messages
        if m.role != PICTURE and (m.content or m.images)
    ]


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


def _message_view(m: Message) -> MessageView:
    usage = None
    if m.prompt_tokens is not None and m.completion_tokens is not None:
        usage = Usage(m.prompt_tokens, m.completion_tokens)
    images = tuple(ImageRef(i.id, i.media_type, i.name, i.size) for i in m.images)
    return MessageView(
        m.id,
        m.role,
        m.content,
        m.model,
        m.status,
        m.error,
        usage,
        m.created_at,
        images,
        tuple(m.citations or ()),
    )


def _image_rows(images: Sequence[NewImage]) -> list[MessageImage]:
    return [
        MessageImage(
            id=image.id,
            position=i,
            media_type=image.media_type,
            name=image.name,
            size=len(image.data),
            data=image.data,
        )
        for i, image in enumerate(images)
    ]


def _view(c: Conversation, *, with_messages: bool = True) -> ConversationView:
    messages = tuple(_message_view(m) for m in c.messages) if with_messages else ()
    return ConversationView(
        ConversationId(c.id),
        c.title,
        c.model,
        c.system_prompt,
        dict(c.settings or {}),
        c.created_at,
        c.updated_at,
        messages,
        len(c.messages) if with_messages else 0,
        knowledge=tuple(KnowledgeBaseId(kb) for kb in c.knowledge or ()),
        knowledge_files=tuple(DocumentId(d) for d in c.knowledge_files or ()),
        remove_builtin_prompt=bool(c.remove_builtin_prompt),
    )


def _snippet(text: str, query: str, width: int = 80) -> str:
    at = find_folded(text, query)
    if at < 0:
        return _title_from(text)
    start = max(0, at - width // 3)
    piece = " ".join(text[start : start + width].split())
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


def _postgres_fold(text: Any) -> ColumnElement[str]:
    """`fold` in PostgreSQL's SQL: decompose, drop the combining marks, lower-case (and the two
    letters whose case folding is not their lower case)."""
    unmarked = func.regexp_replace(
        func.normalize(text, literal_column("NFKD")), combining_marks_class(), "", "g"
    )
    lowered: ColumnElement[str] = func.lower(unmarked)
    return func.replace(func.replace(lowered, "ß", "ss"), "\u03c2", "\u03c3")  # final sigma


def _like_escape(text: str) -> str:
    """`text` taken literally in a LIKE pattern whose escape character is "/"."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


class Conversations:
    def __init__(self, database: Database) -> None:
        self._db = database

    def _matches(self, column: Any, query: str) -> ColumnElement[bool]:
        """`column` contains `query`, ignoring case and accents ("CREPES" finds "crêpes").
        SQLite: a Python function folds the column (`fold`). PostgreSQL: the same steps in
        its own SQL (decompose, drop the combining marks, lower-case), no extension needed;
        it needs a UTF-8 database (the default). Other databases: case only (ILIKE)."""
        if self._db.is_sqlite:
            folded: ColumnElement[str] = getattr(func, FOLD_FUNCTION)(column)
            return folded.contains(fold(query), autoescape=True)
        if self._db.backend == "postgresql":
            pattern = "%" + _like_escape(strip_marks(query)) + "%"
            return _postgres_fold(column).like(_postgres_fold(pattern), escape="/")
        return column.icontains(query, autoescape=True)  # type: ignore[no-any-return]

    def _owned(self, session: Session, owner: str, conversation_id: ConversationId) -> Conversation:
        found = session.scalar(
            select(Conversation)
            .where(Conversation.id == conversation_id, Conversation.owner == owner)
            .options(selectinload(Conversation.messages).selectinload(Message.images))
        )
        if found is None:
            raise NotFound(
                f"There is no conversation '{conversation_id}'. It may have been deleted."
            )
        return found

    def list(self, owner: str, query: str = "", limit: int = 200) -> list[ConversationView]:
        """The owner's conversations, newest first; with `query`, those whose title or one of
        whose messages contains it. Only the owner's rows are read: the message count and the
        search are subqueries of each of the owner's conversations (by the owner index), so
        other people's messages are never scanned, let alone folded."""
        with self._db.session() as session:
            count = (
                select(func.count())
                .where(Message.conversation_id == Conversation.id)
                .correlate(Conversation)
                .scalar_subquery()
            )
            statement = (
                select(Conversation, count)
                .where(Conversation.owner == owner)
                .order_by(Conversation.updated_at.desc())
                .limit(limit)
            )
            query = query.strip()
            if query:
                in_messages = (
                    select(Message.id)
                    .where(
                        Message.conversation_id == Conversation.id,
                        self._matches(Message.content, query),
                    )
                    .correlate(Conversation)
                    .exists()
                )
                statement = statement.where(
                    or_(self._matches(Conversation.title, query), in_messages)
                )
            rows = session.execute(statement).all()
            result = []
            for conversation, found in rows:
                view = _view(conversation, with_messages=False)
                snippet = None
                if query:
                    snippet = self._first_match(session, conversation, query)
                result.append(replace(view, message_count=found, snippet=snippet))
            return result

    def _first_match(self, session: Session, conversation: Conversation, query: str) -> str:
        content = session.scalar(
            select(Message.content)
            .where(
                Message.conversation_id == conversation.id,
                self._matches(Message.content, query),
            )
            .order_by(Message.position)
            .limit(1)
        )
        return _snippet(content if content is not None else conversation.title, query)

    def create(
        self,
        owner: str,
        *,
        title: str = "",
        model: str | None = None,
        system_prompt: str = "",
        remove_builtin_prompt: bool = False,
        settings: dict[str, Any] | None = None,
        messages: Sequence[NewMessage] = (),
        knowledge: Sequence[KnowledgeBaseId] = (),
        knowledge_files: Sequence[DocumentId] = (),
    ) -> ConversationView:
        now = utcnow()
        conversation = Conversation(
            id=new_id(),
            owner=owner,
            title=title,
            model=model,
            system_prompt=system_prompt,
            remove_builtin_prompt=remove_builtin_prompt,
            settings=dict(settings or {}),
            knowledge=list(knowledge),
            knowledge_files=list(knowledge_files),
            created_at=now,
            updated_at=now,
        )
        conversation.messages = [
            Message(
                id=new_id(),
                position=i,
                role=m.role,
                content=m.content,
                model=m.model,
                status=m.status,
                error=m.error,
                created_at=m.created_at or now,
                images=_image_rows(m.images),
            )
            for i, m in enumerate(messages)
        ]
        with self._db.session() as session:
            session.add(conversation)
            session.flush()
            return _view(conversation)

    def get(self, owner: str, conversation_id: ConversationId) -> ConversationView:
        with self._db.session() as session:
            return _view(self._owned(session, owner, conversation_id))

    def update(
        self, owner: str, conversation_id: ConversationId, **changes: Any
    ) -> ConversationView:
        """Set `title`, `model`, `system_prompt`, `remove_builtin_prompt`, `knowledge`,
        `knowledge_files`; merge `settings` key by key."""
        with self._db.session() as session:
            conversation = self._owned(session, owner, conversation_id)
            for name, value in changes.items():
                if name == "settings":
                    conversation.settings = {**(conversation.settings or {}), **value}
                else:
                    setattr(conversation, name, value)
            conversation.updated_at = utcnow()
            return _view(conversation)

    def delete(self, owner: str, conversation_id: ConversationId) -> None:
        with self._db.session() as session:
            session.delete(self._owned(session, owner, conversation_id))

    def images(self, owner: str, ids: Sequence[str]) -> dict[str, NewImage]:
        """The bytes of the owner's images `ids` (others' are not found)."""
        if not ids:
            return {}
        with self._db.session() as session:
            rows = session.scalars(
                select(MessageImage)
                .join(Message)
                .join(Conversation)
                .where(MessageImage.id.in_(ids), Conversation.owner == owner)
                .options(undefer(MessageImage.data))
            )
            return {r.id: NewImage(r.media_type, r.name, r.data, r.id) for r in rows}

    def image(self, owner: str, conversation_id: ConversationId, image_id: str) -> NewImage:
        with self._db.session() as session:
            row = session.scalar(
                select(MessageImage)
                .join(Message)
                .join(Conversation)
                .where(
                    MessageImage.id == image_id,
                    Conversation.id == conversation_id,
                    Conversation.owner == owner,
                )
                .options(undefer(MessageImage.data))
            )
            if row is None:
                raise NotFound(f"There is no image '{image_id}' in this conversation.")
            return NewImage(row.media_type, row.name, row.data, row.id)

    def add_picture(
        self,
        owner: str,
        conversation_id: ConversationId,
        prompt: str,
        model: str,
        image: NewImage,
    ) -> MessageView:
        """A drawn picture kept at the end of the conversation; its prompt titles a
        conversation that has no title yet."""
        with self._db.session() as session:
            conversation = self._owned(session, owner, conversation_id)
            message = Message(
                id=new_id(),
                conversation_id=conversation.id,
                position=self._next_position(session, conversation),
                role=PICTURE,
                content=prompt,
                model=model,
                status="complete",
                created_at=utcnow(),
                images=_image_rows([image]),
            )
            session.add(message)
            if not conversation.title:
                conversation.title = _title_from(prompt)
            conversation.updated_at = utcnow()
            session.flush()
            return _message_view(message)

    @staticmethod
    def _next_position(session: Session, conversation: Conversation) -> int:
        position = session.scalar(
            select(func.coalesce(func.max(Message.position) + 1, 0)).where(
                Message.conversation_id == conversation.id
            )
        )
        return position or 0

    def begin_turn(
        self,
        owner: str,
        conversation_id: ConversationId,
        turn: Turn,
        model: str | None,
        images: Sequence[NewImage] = (),
    ) -> MessageView | None:
        """Apply a planned turn once its answer has started: drop what it replaces, store the
        new user message (returned) with `images` (the turn's, with their bytes), remember the
        model chosen."""
        with self._db.session() as session:
            conversation = self._owned(session, owner, conversation_id)
            session.execute(
                delete(Message).where(
                    Message.conversation_id == conversation.id, Message.position >= turn.keep
                )
            )
            added = None
            if turn.user is not None:
                added = Message(
                    id=new_id(),
                    conversation_id=conversation.id,
                    position=turn.keep,
                    role="user",
                    content=turn.user,
                    status="complete",
                    created_at=utcnow(),
                    images=_image_rows(images),
                )
                session.add(added)
                if not conversation.title:
                    conversation.title = _title_from(turn.user or " ".join(i.name for i in images))
            if model:
                conversation.model = model
            conversation.updated_at = utcnow()
            session.flush()
            return None if added is None else _message_view(added)

    def save_answer(
        self,
        owner: str,
        conversation_id: ConversationId,
        message_id: str,
        *,
        content: str,
        model: str,
        status: str,
        error: str | None = None,
        usage: Usage | None = None,
        citations: Sequence[dict[str, Any]] = (),
    ) -> MessageView:
        with self._db.session() as session:
            conversation = self._owned(session, owner, conversation_id)
            message = Message(
                id=message_id,
                conversation_id=conversation.id,
                position=self._next_position(session, conversation),
                role="assistant",
                content=content,
                model=model,
                status=status,
                error=error,
                prompt_tokens=None if usage is None else usage.prompt_tokens,
                completion_tokens=None if usage is None else usage.completion_tokens,
                created_at=utcnow(),
                citations=list(citations) or None,
            )
            session.add(message)
            conversation.updated_at = utcnow()
            session.flush()
            return _message_view(message)
