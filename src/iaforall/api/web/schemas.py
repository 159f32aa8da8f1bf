"""Bodies and answers of the web app's API (docs/web-api.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from iaforall.core.types import ConversationId, DocumentId, KnowledgeBaseId, Sampling
from iaforall.store.conversations import ConversationView, MessageView, NewImage, NewMessage
from iaforall.vision import data_url

MAX_TEXT = 200_000  # characters in one message or system prompt: far beyond any context here
MAX_MESSAGES = 10_000  # in one imported conversation


def _no_nul(text: str) -> str:
    # PostgreSQL cannot store U+0000 in text, and no person types it: refuse it everywhere.
    if "\x00" in text:
        raise ValueError("contains a NUL character (U+0000), which cannot be stored")
    return text


Text = Annotated[str, AfterValidator(_no_nul)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerationSettings(_Strict):
    """None: the engine's default."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=131_072)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)

    def sampling(self) -> Sampling:
        return Sampling(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
        )


MAX_BASES = 16  # knowledge bases searched for one conversation


_REMOVE_BUILTIN = (
    "With no system prompt of its own, send the model an empty one rather than letting its "
    "chat template add its built-in prompt."
)


class ConversationCreate(_Strict):
    title: Text = Field("", max_length=200)
    model: str | None = Field(None, max_length=200)
    system_prompt: Text = Field("", max_length=MAX_TEXT)
    remove_builtin_prompt: bool = Field(False, description=_REMOVE_BUILTIN)
    settings: GenerationSettings = Field(default_factory=GenerationSettings)
    knowledge: list[KnowledgeBaseId] = Field(default_factory=list, max_length=MAX_BASES)
    knowledge_files: list[DocumentId] = Field(default_factory=list, max_length=MAX_BASES)


class ConversationPatch(_Strict):
    title: Text | None = Field(None, max_length=200)
    model: str | None = Field(None, max_length=200)
    system_prompt: Text | None = Field(None, max_length=MAX_TEXT)
    remove_builtin_prompt: bool | None = Field(None, description=_REMOVE_BUILTIN)
    settings: GenerationSettings | None = None
    knowledge: list[KnowledgeBaseId] | None = Field(None, max_length=MAX_BASES)
    knowledge_files: list[DocumentId] | None = Field(None, max_length=MAX_BASES)

    def changes(self) -> dict[str, Any]:
        """What is set. A null leaves its field as it is, but `model`'s: back to the default."""
        given = self.model_dump(exclude_unset=True, exclude={"settings"})
        changes = {k: v for k, v in given.items() if v is not None or k == "model"}
        if self.settings is not None:
            changes["settings"] = self.settings.model_dump(exclude_unset=True)
        return changes


MAX_IMAGES = 32  # in one message, whatever the settings (IAFORALL_IMAGE_MAX_COUNT is lower)


class ImageIn(_Strict):
    """An image attached to a message: a base64 data URL, and the file's name (its alt text)."""

    url: str = Field(min_length=5)
    name: Text = Field("", max_length=200)


def _data_url(url: str) -> str:
    # A picture comes from the page that drew it: never a link the server would fetch.
    if url[:11].lower() != "data:image/":
        raise ValueError("must be a data: URL of an image (data:image/png;base64,...)")
    return url


class DrawnImageIn(ImageIn):
    url: Annotated[str, AfterValidator(_data_url)] = Field(min_length=12)


class PictureIn(_Strict):
    """A picture drawn for the conversation (POST /v1/images/generations), to keep in it."""

    # The prompt's length is checked against IAFORALL_DRAW_MAX_PROMPT_CHARS by the route.
    prompt: Text = Field(max_length=MAX_TEXT)
    model: str = Field(min_length=1, max_length=200)
    image: DrawnImageIn


class ReplyBody(_Strict):
    action: Literal["send", "regenerate", "edit"] = "send"
    content: Text | None = Field(None, max_length=MAX_TEXT)
    model: str | None = Field(None, max_length=200)
    # None: none for a send; for an edit, keep those of the message it replaces.
    images: list[ImageIn] | None = Field(None, max_length=MAX_IMAGES)


class PromptBody(_Strict):
    draft: Text | None = Field(None, max_length=MAX_TEXT)
    model: str | None = Field(None, max_length=200)


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class ImageOut(BaseModel):
    id: str
    media_type: str
    name: str
    size: int


class MessageOut(BaseModel):
    id: str
    role: str
    content: str
    model: str | None
    status: str
    error: str | None
    usage: UsageOut | None
    created_at: datetime
    images: list[ImageOut] = Field(default_factory=list)
    citations: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def of(cls, m: MessageView) -> MessageOut:
        usage = (
            None
            if m.usage is None
            else UsageOut(
                prompt_tokens=m.usage.prompt_tokens, completion_tokens=m.usage.completion_tokens
            )
        )
        return cls(
            id=m.id,
            role=m.role,
            content=m.content,
            model=m.model,
            status=m.status,
            error=m.error,
            usage=usage,
            created_at=m.created_at,
            images=[ImageOut(**vars(i)) for i in m.images],
            citations=list(m.citations),
        )


class ConversationOut(BaseModel):
    id: ConversationId
    title: str
    model: str | None
    system_prompt: str
    remove_builtin_prompt: bool = False
    settings: GenerationSettings
    knowledge: list[KnowledgeBaseId]
    knowledge_files: list[DocumentId] = []
    created_at: datetime
    updated_at: datetime

    @classmethod
    def fields_of(cls, c: ConversationView) -> dict[str, Any]:
        return {
            "id": c.id,
            "title": c.title,
            "model": c.model,
            "system_prompt": c.system_prompt,
            "remove_builtin_prompt": c.remove_builtin_prompt,
            "settings": GenerationSettings.model_validate(c.settings),
            "knowledge": list(c.knowledge),
            "knowledge_files": list(c.knowledge_files),
            "created_at": c.created_at,
            "updated_at": c.updated_at,
        }


class ConversationFull(ConversationOut):
    messages: list[MessageOut]

    @classmethod
    def of(cls, c: ConversationView) -> ConversationFull:
        return cls(**cls.fields_of(c), messages=[MessageOut.of(m) for m in c.messages])


class ConversationSummary(ConversationOut):
    message_count: int
    snippet: str | None = None

    @classmethod
    def of(cls, c: ConversationView) -> ConversationSummary:
        return cls(**cls.fields_of(c), message_count=c.message_count, snippet=c.snippet)


# The export / import document. Kept small and explicit so other tools can write it too.
EXPORT_FORMAT = "iaforall.conversation"


class ExportedMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # "picture": drawn by an image model; `content` is its prompt, `images` the picture.
    role: Literal["user", "assistant", "picture"]
    content: Text = Field(max_length=MAX_TEXT)
    model: str | None = Field(None, max_length=200)
    status: Literal["complete", "stopped", "error"] = "complete"
    error: Text | None = Field(None, max_length=MAX_TEXT)
    created_at: datetime | None = None
    images: list[ImageIn] = Field(default_factory=list, max_length=MAX_IMAGES)

    def to_store(self, images: Sequence[NewImage] = ()) -> NewMessage:
        """`images`: this message's images, once checked."""
        return NewMessage(
            self.role,
            self.content,
            self.model,
            self.status,
            self.error,
            self.created_at,
            tuple(images),
        )


class ExportedConversation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: Literal["iaforall.conversation"]
    version: Literal[1]
    title: Text = Field("", max_length=200)
    model: str | None = Field(None, max_length=200)
    system_prompt: Text = Field("", max_length=MAX_TEXT)
    remove_builtin_prompt: bool = False
    settings: GenerationSettings = Field(default_factory=GenerationSettings)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    messages: list[ExportedMessage] = Field(default_factory=list, max_length=MAX_MESSAGES)
    # Ids of the knowledge bases and single files the conversation searches: kept on import
    # where they exist and the importing user may read them.
    knowledge: list[KnowledgeBaseId] = Field(default_factory=list, max_length=MAX_BASES)
    knowledge_files: list[DocumentId] = Field(default_factory=list, max_length=MAX_BASES)

    @classmethod
    def of(cls, c: ConversationView, images: Mapping[str, NewImage]) -> ExportedConversation:
        """`images`: the bytes of the conversation's images, by id."""
        return cls(
            format=EXPORT_FORMAT,
            version=1,
            title=c.title,
            model=c.model,
            system_prompt=c.system_prompt,
            remove_builtin_prompt=c.remove_builtin_prompt,
            settings=GenerationSettings.model_validate(c.settings),
            created_at=c.created_at,
            updated_at=c.updated_at,
            knowledge=list(c.knowledge),
            knowledge_files=list(c.knowledge_files),
            messages=[
                ExportedMessage(
                    role=m.role if m.role in ("user", "picture") else "assistant",
                    content=m.content,
                    model=m.model,
                    status=m.status,
                    error=m.error,
                    created_at=m.created_at,
                    images=[
                        ImageIn(url=data_url(images[i.id].data, i.media_type), name=i.name)
                        for i in m.images
                        if i.id in images
                    ],
                )
                for m in c.messages
            ],
        )
