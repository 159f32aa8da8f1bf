"""/v1: the OpenAI-compatible endpoints, thin adapters onto the dispatcher."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services, user_of
from iaforall.api.images import with_images
from iaforall.api.ollama.options import keep_alive_for
from iaforall.api.openai.schemas import ChatCompletionBody, CompletionBody
from iaforall.api.openapi import json_doc
from iaforall.api.policing import checked_output, first_chunk_with
from iaforall.api.policy import policy_of, preferred_language
from iaforall.api.streaming import (
    Item,
    cancel_on_disconnect,
    queue_headers,
    sse_events,
    start_stream,
)
from iaforall.core.errors import ModelNotFound
from iaforall.core.types import ChatRequest, GenerationRequest, Principal, UserId
from iaforall.embeddings import builtin_models
from iaforall.engines import whisper
from iaforall.knowledge.retrieve import Citation, question_of, with_sources
from iaforall.models.store import ModelInfo
from iaforall.policy.engine import Decision
from iaforall.policy.gate import Policy, RequestKind, decisions_field
from iaforall.scheduling.dispatch import QueueUpdate
from iaforall.services import Services

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

ServicesDep = Annotated[Services, Depends(services)]
UserDep = Annotated[UserId, Depends(user_of)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
PolicyDep = Annotated[Policy, Depends(policy_of)]

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _model_object(info: ModelInfo) -> dict[str, Any]:
    return {
        "id": info.name,
        "object": "model",
        "created": int(info.added_at.timestamp()),
        "owned_by": "iaforall",
    }


@router.get("/models")
async def list_models(svc: ServicesDep) -> dict[str, Any]:
    data = [_model_object(m) for m in svc.store.list()]
    data += [_speech_model(name) for name in whisper.installed()]
    data += [_speech_model(name) for name in builtin_models()]  # embeddings
    return {"object": "list", "data": data}


def _speech_model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "iaforall"}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, svc: ServicesDep) -> dict[str, Any]:
    info = svc.store.get(model_id)
    if info is None and model_id in [*whisper.installed(), *builtin_models()]:
        return _speech_model(model_id)
    if info is None:
        raise ModelNotFound(model_id)
    return _model_object(info)


@router.post("/chat/completions", response_model=None, openapi_extra=json_doc(ChatCompletionBody))
async def chat_completions(
    request: Request, svc: ServicesDep, me: PrincipalDep, policy: PolicyDep
) -> Response:
    body = await json_body(request, ChatCompletionBody)
    keep_alive = keep_alive_for(me, body.iaforall.keep_alive, svc.settings.engine.keep_alive)
    chat = await with_images(request, svc, body.to_core(me.user))
    chat, citations = await _with_knowledge(svc, body, chat)
    language = preferred_language(request.headers.get("accept-language", ""))
    decisions = await policy.check_input(chat, kind="chat", language=language)
    fields: dict[str, Any] = {}
    if body.iaforall.knowledge is not None:
        fields["citations"] = [c.to_json() for c in citations]
    if body.iaforall.return_prompt:
        fields["prompt"] = await svc.dispatcher.render_prompt(chat)
    return await _answer(
        Asked(request, svc, me, policy, "chat", language, keep_alive),
        chat,
        decisions,
        fields,
        lambda result: result["choices"][0]["message"].get("content") or "",
        include_usage=body.include_usage,
    )


@router.post("/chat/prompt", openapi_extra=json_doc(ChatCompletionBody))
async def chat_prompt(request: Request, svc: ServicesDep, user: UserDep) -> dict[str, Any]:
    """What the model would be given for this chat: the exact text its template renders."""
    body = await json_body(request, ChatCompletionBody)
    chat = body.to_core(user)
    model, _ = svc.dispatcher.check(chat)
    chat = await with_images(request, svc, chat)
    chat, _ = await _with_knowledge(svc, body, chat)
    prompt = await svc.dispatcher.render_prompt(chat)
    return {"object": "chat.prompt", "model": model, "prompt": prompt}


@router.post("/completions", response_model=None, openapi_extra=json_doc(CompletionBody))
async def completions(
    request: Request, svc: ServicesDep, me: PrincipalDep, policy: PolicyDep
) -> Response:
    body = await json_body(request, CompletionBody)
    completion = body.to_core(me.user)
    language = preferred_language(request.headers.get("accept-language", ""))
    decisions = await policy.check_input(completion, kind="completion", language=language)
    return await _answer(
        Asked(request, svc, me, policy, "completion", language),
        completion,
        decisions,
        {},
        lambda result: result["choices"][0].get("text") or "",
        include_usage=body.include_usage,
    )


async def _with_knowledge(
    svc: Services, body: ChatCompletionBody, chat: ChatRequest
) -> tuple[ChatRequest, list[Citation]]:
    """The best passages of the knowledge bases asked for, placed before the question."""
    asked = body.iaforall.knowledge
    if asked is None:
        return chat, []
    citations = await svc.knowledge.retriever.search(
        chat.user, asked.bases, question_of(chat), k=asked.k, documents=asked.files
    )
    return with_sources(chat, citations), citations


@dataclass(frozen=True)
class Asked:
    """Who asked, through which request, under which rules and in which language."""

    request: Request
    svc: Services
    me: Principal
    policy: Policy
    kind: RequestKind
    language: str | None
    keep_alive: float | None = None  # our `iaforall.keep_alive`: set on the model after


async def _answer(
    asked: Asked,
    generation: GenerationRequest,
    decisions: list[Decision],
    fields: dict[str, Any],
    text_of: Callable[[dict[str, Any]], str],
    *,
    include_usage: bool,
) -> Response:
    """The answer, whole or streamed, with the rules' decisions on input and output in its
    `iaforall` field (and `fields`, e.g. the prompt)."""
    policy, kind, language = asked.policy, asked.kind, asked.language
    if not generation.stream:
        try:
            result, admission = await _generate(asked.request, asked.svc, asked.me, generation)
        finally:
            await _keep(asked, generation)
        decisions = decisions + await policy.check_output(
            text_of(result), generation, kind=kind, language=language
        )
        _extend(result, {**fields, **decisions_field(decisions)})
        return JSONResponse(result, headers=queue_headers(admission))
    items = checked_output(
        asked.svc.gate.stream(asked.me, generation, asked.svc.dispatcher.stream_queued),
        policy,
        generation,
        kind=kind,
        language=language,
    )
    items = first_chunk_with(items, {**fields, **decisions_field(decisions)})
    if asked.keep_alive is not None:
        items = _kept(asked, generation, items)
    return await _sse_response(items, include_usage=include_usage)


async def _keep(asked: Asked, generation: GenerationRequest) -> None:
    """`iaforall.keep_alive`, as Ollama's: the model's keep-alive from now on (0 unloads)."""
    if asked.keep_alive is None:
        return
    try:
        model, _ = asked.svc.pool.resolve(generation.model)
    except ModelNotFound:  # already told
        return
    await asked.svc.pool.keep(model, asked.keep_alive)


async def _kept(
    asked: Asked, generation: GenerationRequest, items: AsyncGenerator[Item, None]
) -> AsyncGenerator[Item, None]:
    try:
        async for item in items:
            yield item
    finally:
        await items.aclose()
        await _keep(asked, generation)


async def _generate(
    request: Request, svc: Services, me: Principal, generation: GenerationRequest
) -> tuple[dict[str, Any], QueueUpdate]:
    admission: list[QueueUpdate] = []

    async def work(admitted: GenerationRequest) -> dict[str, Any]:
        return await svc.dispatcher.generate(admitted, on_admission=admission.append)

    result = await cancel_on_disconnect(request, svc.gate.generate(me, generation, work))
    return result, admission[0]


def _extend(result: dict[str, Any], fields: dict[str, Any]) -> None:
    if fields:
        result["iaforall"] = {**result.get("iaforall", {}), **fields}


async def _sse_response(items: AsyncGenerator[Item, None], *, include_usage: bool) -> Response:
    """A request made to wait starts streaming at once, with its place in line as comments;
    one served at once waits for its first chunk, so early errors keep their HTTP status."""
    admission, first, rest = await start_stream(items)
    return StreamingResponse(
        sse_events(first, rest, include_usage=include_usage),
        media_type="text/event-stream",
        headers={**_SSE_HEADERS, **queue_headers(admission)},
    )
