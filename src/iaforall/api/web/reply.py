"""Answering in a conversation: the stored history goes to the answer pipeline, the answer
streams back to the browser and is stored as it ends, even when the user stops it."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from iaforall.answering import KnowledgeAsk, Question
from iaforall.api.answering import PipelineDep, builtin_prompt_field, language_of
from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services, user_of
from iaforall.api.errors import sse_error
from iaforall.api.openapi import json_doc
from iaforall.api.streaming import DONE, SSE_HEADERS, queue_headers
from iaforall.api.web.images import checked, history_images, reader_of, with_parts
from iaforall.api.web.router import off_loop
from iaforall.api.web.schemas import GenerationSettings, MessageOut, PromptBody, ReplyBody
from iaforall.core.errors import IAForAllError, NotFound
from iaforall.core.events import Chunk, Decided, Failed, QueueUpdate
from iaforall.core.ids import new_id
from iaforall.core.types import (
    ChatRequest,
    ConversationId,
    DocumentId,
    ModelId,
    Principal,
    Usage,
    UserId,
)
from iaforall.policy.gate import decisions_field
from iaforall.services import Services
from iaforall.store.conversations import (
    ConversationView,
    MessageView,
    NewImage,
    Said,
    Turn,
    history_of,
    plan_turn,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/web/api", tags=["web app"])

ServicesDep = Annotated[Services, Depends(services)]
UserDep = Annotated[UserId, Depends(user_of)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]


def chat_request(
    conversation: ConversationView,
    history: tuple[Said, ...],
    model: str,
    user: UserId,
    *,
    stream: bool,
    images: Mapping[str, NewImage],
    most_images: int,
) -> ChatRequest:
    """The conversation as the model sees it: its system prompt if the user wrote one, else
    an empty one if the user removed the model's built-in prompt, else none (the engine then
    does what is chosen for the model: see models/system_prompt.py); messages with images
    as content parts (read for the model by the pipeline), the last `most_images` of them
    (`images`, from `history_images`)."""
    messages: list[dict[str, Any]] = []
    if conversation.system_prompt or conversation.remove_builtin_prompt:
        messages.append({"role": "system", "content": conversation.system_prompt})
    messages += with_parts(history, images, most_images)
    return ChatRequest(
        model=ModelId(model),
        messages=tuple(messages),
        user=user,
        sampling=GenerationSettings.model_validate(conversation.settings).sampling(),
        stream=stream,
    )


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@router.post(
    "/conversations/{conversation_id}/reply", response_model=None, openapi_extra=json_doc(ReplyBody)
)
async def reply(
    conversation_id: ConversationId,
    request: Request,
    svc: ServicesDep,
    pipeline: PipelineDep,
    me: PrincipalDep,
) -> Response:
    user = me.user
    body = await json_body(request, ReplyBody)
    store = svc.conversations
    new_images = None
    if body.images is not None:
        new_images = await checked(reader_of(request, svc), body.images, "images")
    adding = sum(len(i.data) for i in new_images or ())
    if adding:  # stored with the message: within the sender's storage quota (413 at once)
        await off_loop(svc.storage.check, me, adding)
    conversation = await off_loop(store.get, user, conversation_id)
    turn = plan_turn(conversation.messages, body.action, body.content, new_images)
    images, attach = await history_images(svc, user, turn)
    model = body.model or conversation.model or svc.settings.server.model
    most = svc.settings.images.image_max_count
    chat = chat_request(
        conversation, turn.history, model, user, stream=True, images=images, most_images=most
    )
    knowledge = await _knowledge(svc, user, conversation, turn.history)
    question = Question(
        chat, kind="web", language=language_of(request), knowledge=knowledge, count_images=False
    )
    # Nothing is stored before the answer starts: a busy server or a missing model leaves
    # the conversation as it was, and the app keeps the typed text. A request that must wait
    # for its turn starts the stream at once, with `queue` events, and stores its turn when
    # the answer starts.
    streamed = await pipeline.stream(me, question)
    answer = Answer(new_id(), model, citations=[c.to_json() for c in streamed.citations])
    start: dict[str, Any] | None = None

    async def begin() -> bytes:
        nonlocal start
        async with svc.storage.reserve(me, adding):  # checked again: a wait in line may be long
            user_message = await off_loop(
                store.begin_turn, user, conversation_id, turn, body.model, attach
            )
        start = {
            "user_message": None
            if user_message is None
            else MessageOut.of(user_message).model_dump(mode="json"),
            "assistant_message_id": answer.id,
            "citations": answer.citations,
            **decisions_field(streamed.decisions),
        }
        return _event("start", start)

    started: bytes | None = None
    if streamed.answering:  # served at once: stored before the response, as before
        try:
            started = await begin()
        except BaseException:
            await streamed.close()
            raise

    async def events() -> AsyncIterator[bytes]:
        said: dict[str, Any] = {}
        try:
            if started is not None:
                yield started
            async for event in streamed.events:
                if isinstance(event, Chunk):
                    if start is None:
                        yield await begin()
                    if event.usage is not None:
                        answer.usage = event.usage
                    if not event.usage_only:
                        answer.pieces.append(event.delta.text)
                        yield b"data: " + event.data + b"\n\n"
                elif isinstance(event, QueueUpdate):
                    place = {"position": event.position, "wait_s": round(event.wait_s, 1)}
                    yield _event("queue", {**place, "paused": True} if event.paused else place)
                elif isinstance(event, Decided):
                    said = event.field()  # the output rules': shown once the answer is whole
                elif isinstance(event, Failed):
                    answer.status, answer.error = "error", event.error.message
                    yield sse_error(event.error)
            if answer.status != "error":
                answer.status = "complete"
                if said:
                    yield _event("decisions", said)
        except IAForAllError as exc:  # the turn could not be stored (a storage quota)
            answer.status, answer.error = "error", exc.message
            yield sse_error(exc)
        finally:
            # Stored here, synchronously (a few ms), because a stopped answer arrives as a
            # cancellation, and an await would be cancelled too. Nothing to store if the
            # answer never started (it failed or was stopped while waiting in line).
            try:
                saved = None if start is None else _save(svc, user, conversation_id, answer)
            finally:
                await streamed.close()  # stops the engine's generation at once
        if saved is not None:
            yield _event("done", {"message": MessageOut.of(saved).model_dump(mode="json")})
        yield DONE

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **queue_headers(streamed.admission)},
    )


async def _knowledge(
    svc: Services, user: UserId, conversation: ConversationView, history: tuple[Said, ...]
) -> KnowledgeAsk | None:
    """The conversation's knowledge bases and single files, for its last user message (bases
    and files deleted or no longer shared since are left out)."""
    wanted = conversation.knowledge or conversation.knowledge_files
    if not wanted or not history or history[-1].role != "user":
        return None
    readable = await off_loop(svc.knowledge.bases.all_for, user)
    bases = [kb for kb in conversation.knowledge if kb in {b.id for b in readable}]
    files = await off_loop(_readable_files, svc, user, conversation.knowledge_files)
    return KnowledgeAsk(tuple(bases), tuple(files))


def _readable_files(svc: Services, user: UserId, ids: tuple[DocumentId, ...]) -> list[DocumentId]:
    """Those of these files the user may still read."""
    found = []
    for document_id in ids:
        with contextlib.suppress(NotFound):
            found += [d.id for d in svc.knowledge.bases.documents_by_id(user, [document_id])]
    return found


@dataclass
class Answer:
    """An answer as it streams; `status` is what is stored if the client goes away."""

    id: str
    model: str
    pieces: list[str] = field(default_factory=list)
    usage: Usage | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    status: str = "stopped"
    error: str | None = None


def _save(
    svc: Services, user: UserId, conversation_id: ConversationId, answer: Answer
) -> MessageView | None:
    try:
        return svc.conversations.save_answer(
            user,
            conversation_id,
            answer.id,
            content="".join(answer.pieces),
            model=answer.model,
            status=answer.status,
            error=answer.error,
            usage=answer.usage,
            citations=answer.citations,
        )
    except IAForAllError as exc:  # deleted while it was answering: nothing left to store in
        log.info("answer %s not stored: %s", answer.id, exc.message)
        return None


@router.post("/conversations/{conversation_id}/prompt", openapi_extra=json_doc(PromptBody))
async def prompt(
    conversation_id: str, request: Request, svc: ServicesDep, pipeline: PipelineDep, user: UserDep
) -> dict[str, Any]:
    """What the model would be given next: the exact text its chat template renders."""
    body = await json_body(request, PromptBody)
    conversation = await off_loop(svc.conversations.get, user, conversation_id)
    history = tuple(history_of(conversation.messages))
    if body.draft:
        history += (Said("user", body.draft),)
    images, _ = await history_images(svc, user, Turn(0, None, history))
    model = body.model or conversation.model or svc.settings.server.model
    most = svc.settings.images.image_max_count
    chat = chat_request(
        conversation, history, model, user, stream=False, images=images, most_images=most
    )
    # With a draft, the next answer's sources, as the model would be given them.
    knowledge = await _knowledge(svc, user, conversation, history) if body.draft else None
    resolved, prompt = await pipeline.prompt(
        Question(chat, knowledge=knowledge, count_images=False)
    )
    builtin = await builtin_prompt_field(pipeline, resolved, chat.messages)
    return {"model": resolved, "prompt": prompt, "builtin_system_prompt": builtin}


@router.get("/models/builtin-prompt")
async def builtin_prompt(
    pipeline: PipelineDep,
    svc: ServicesDep,
    user: UserDep,
    model: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """A chat model's built-in system prompt, read from its chat template, and whether a
    conversation without a system prompt gets it: the settings show it, to replace (write
    one's own) or remove (an empty system message). It loads the model."""
    resolved, found = await pipeline.builtin_prompt(model or svc.settings.server.model)
    return {"model": resolved, "text": found.text, "used": found.used}
