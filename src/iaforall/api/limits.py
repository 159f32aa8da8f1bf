"""The body limit of every route, enforced while the body streams in.

Each route belongs to one family (answers with images, uploads, an imported conversation, and
everything else); the first family whose pattern matches the path gives the limit. A declared
`Content-Length` past it is refused before the app runs; a body sent without one is counted as
it arrives and refused the moment it passes, so no route ever holds more than its limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iaforall.api.errors import error_response, shape_of
from iaforall.api.web.schemas import MAX_TEXT
from iaforall.core.errors import PayloadTooLarge
from iaforall.settings import Settings

MB = 1_000_000
IMPORT_LIMIT = 64 * MB  # one exported conversation, its images included
CONTROL_LIMIT = 1 * MB  # sign-in, settings, admin, model management: small JSON
MAX_KNOWLEDGE_FILES = 100  # in one knowledge upload request


@dataclass(frozen=True)
class Family:
    name: str
    pattern: re.Pattern[str]
    limit: int


def upload_ceiling(max_bytes: int, max_files: int) -> int:
    """A multipart body's limit: its files, plus room for the form's fields and boundaries."""
    return max_bytes * max_files + MB


def answer_limit(settings: Settings) -> int:
    """Every image allowed, base64-encoded, plus 16 MB of text."""
    images = settings.images
    return images.image_max_count * images.image_max_bytes * 4 // 3 + 16 * MB


def picture_limit(settings: Settings) -> int:
    """One image at its largest, base64-encoded, plus its prompt."""
    return settings.images.image_max_bytes * 4 // 3 + MB


def families(settings: Settings) -> list[Family]:
    """The route families in the order they are matched; the last one matches any path."""
    audio = upload_ceiling(settings.voice.max_audio_mb * MB, 1)
    # every character allowed, escaped as JSON may escape it (\u00e9: 6 bytes), and some
    embeddings = settings.embeddings.embedding_max_chars * 6 + MB
    documents = upload_ceiling(settings.knowledge.document_max_mb * MB, MAX_KNOWLEDGE_FILES)
    return [
        Family("import", re.compile(r"/web/api/conversations/import/?"), IMPORT_LIMIT),
        Family("audio upload", re.compile(r"/v1/audio/(transcriptions|translations)/?"), audio),
        Family("document upload", re.compile(r"/v1/knowledge_bases/[^/]+/files/?"), documents),
        Family("embeddings", re.compile(r"/v1/embeddings/?|/api/embed(dings)?/?"), embeddings),
        Family(
            "answer",
            re.compile(
                r"/v1/(chat/completions|chat/prompt|completions|responses|messages)/?"
                r"|/api/(chat|generate)/?"
                r"|/web/api/conversations/[^/]+/(reply|prompt)/?"
            ),
            answer_limit(settings),
        ),
        Family(
            "picture",
            re.compile(r"/web/api/conversations/[^/]+/pictures/?"),
            picture_limit(settings),
        ),
        # a conversation's settings: a system prompt of MAX_TEXT characters, JSON-escaped
        Family(
            "conversation",
            re.compile(r"/web/api/conversations(/[^/]+)?/?"),
            MAX_TEXT * 6 + MB,
        ),
        Family("control", re.compile(r".*", re.DOTALL), CONTROL_LIMIT),
    ]


def family_of(path: str, table: list[Family]) -> Family:
    return next(f for f in table if f.pattern.fullmatch(path))


def too_large(limit: int) -> PayloadTooLarge:
    shown = f"{limit / MB:g} MB" if limit >= MB else f"{limit // 1000} KB"
    return PayloadTooLarge(f"The request body is larger than the {shown} allowed here.")


class BodyLimits:
    """ASGI middleware: the family's limit on every request body, before any buffering."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.table = families(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = family_of(scope["path"], self.table).limit
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            response = error_response(too_large(limit), shape=shape_of(scope["path"]))
            await response(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if started:  # too late for a 413: end the request as if the client left
                        return {"type": "http.disconnect"}
                    raise too_large(limit)  # the app's error handlers shape the 413
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, watched_send)
