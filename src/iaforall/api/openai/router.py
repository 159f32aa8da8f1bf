"""/v1: the OpenAI-compatible endpoints, thin adapters onto the dispatcher."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services, user_of
from iaforall.api.openai.schemas import ChatCompletionBody, CompletionBody
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
from iaforall.core.types import GenerationRequest, Principal, UserId
from iaforall.models.store import ModelInfo
from iaforall.policy.gate import Policy, decisions_field
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
    return {"object": "list", "data": [_model_object(m) for m in svc.store.list()]}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, svc: ServicesDep) -> dict[str, Any]:
    info = svc.store.get(model_id)
    if info is None:
        raise ModelNotFound(model_id)
    return _model_object(info)


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    request: Request, svc: ServicesDep, me: PrincipalDep, policy: PolicyDep
) -> Response:
    body = await json_body(request, ChatCompletionBody)
    chat = body.to_core(me.user)
    language = preferred_language(request.headers.get("accept-language", ""))
    decisions = await policy.check_input(chat, kind="chat", language=language)
    prompt = await svc.dispatcher.render_prompt(chat) if body.iaforall.return_prompt else None
    extension = {"prompt": prompt} if prompt is not None else {}
    if not chat.stream:
        result, admission = await _generate(request, svc, me, chat)
        answer = result["choices"][0]["message"].get("content") or ""
        decisions += await policy.check_output(answer, chat, kind="chat", language=language)
        _extend(result, {**extension, **decisions_field(decisions)})
        return JSONResponse(result, headers=queue_headers(admission))
    items = checked_output(
        svc.gate.stream(me, chat, svc.dispatcher.stream_queued),
        policy,
        chat,
        kind="chat",
        language=language,
    )
    items = first_chunk_with(items, {**extension, **decisions_field(decisions)})
    return await _sse_response(items, include_usage=body.include_usage)


@router.post("/chat/prompt")
async def chat_prompt(request: Request, svc: ServicesDep, user: UserDep) -> dict[str, Any]:
    """What the model would be given for this chat: the exact text its template renders."""
    body = await json_body(request, ChatCompletionBody)
    chat = body.to_core(user)
    model, _ = svc.dispatcher.check(chat)
    prompt = await svc.dispatcher.render_prompt(chat)
    return {"object": "chat.prompt", "model": model, "prompt": prompt}


@router.post("/completions", response_model=None)
async def completions(
    request: Request, svc: ServicesDep, me: PrincipalDep, policy: PolicyDep
) -> Response:
    body = await json_body(request, CompletionBody)
    completion = body.to_core(me.user)
    language = preferred_language(request.headers.get("accept-language", ""))
    decisions = await policy.check_input(completion, kind="completion", language=language)
    if not completion.stream:
        result, admission = await _generate(request, svc, me, completion)
        answer = result["choices"][0].get("text") or ""
        decisions += await policy.check_output(
            answer, completion, kind="completion", language=language
        )
        _extend(result, decisions_field(decisions))
        return JSONResponse(result, headers=queue_headers(admission))
    items = checked_output(
        svc.gate.stream(me, completion, svc.dispatcher.stream_queued),
        policy,
        completion,
        kind="completion",
        language=language,
    )
    items = first_chunk_with(items, decisions_field(decisions))
    return await _sse_response(items, include_usage=body.include_usage)


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
