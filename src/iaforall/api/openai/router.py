"""/v1: the OpenAI-compatible endpoints, thin adapters onto the dispatcher."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from iaforall.api.deps import json_body, services, user_of
from iaforall.api.openai.schemas import ChatCompletionBody, CompletionBody
from iaforall.api.streaming import cancel_on_disconnect, first_and_rest, sse_events
from iaforall.core.errors import ModelNotFound
from iaforall.core.types import UserId
from iaforall.engines.protocol import Chunk
from iaforall.models.store import ModelInfo
from iaforall.services import Services

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

ServicesDep = Annotated[Services, Depends(services)]
UserDep = Annotated[UserId, Depends(user_of)]

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
async def chat_completions(request: Request, svc: ServicesDep, user: UserDep) -> Response:
    body = await json_body(request, ChatCompletionBody)
    chat = body.to_core(user)
    dispatcher = svc.dispatcher
    prompt = await dispatcher.render_prompt(chat) if body.iaforall.return_prompt else None
    if not chat.stream:
        result = await cancel_on_disconnect(request, dispatcher.generate(chat))
        if prompt is not None:
            result["iaforall"] = {"prompt": prompt}
        return JSONResponse(result)
    first, rest = await first_and_rest(dispatcher.stream(chat))
    if prompt is not None and first is not None:
        # Only the first chunk is re-encoded, and only when asked.
        extension = {"iaforall": {"prompt": prompt}}
        first = Chunk(_with_fields(first.data, extension), first.usage, first.usage_only)
    return StreamingResponse(
        sse_events(first, rest, include_usage=body.include_usage),
        media_type="text/event-stream",
        headers=_SSE_HEADERS,
    )


@router.post("/chat/prompt")
async def chat_prompt(request: Request, svc: ServicesDep, user: UserDep) -> dict[str, Any]:
    """What the model would be given for this chat: the exact text its template renders."""
    body = await json_body(request, ChatCompletionBody)
    chat = body.to_core(user)
    model, _ = svc.dispatcher.check(chat)
    prompt = await svc.dispatcher.render_prompt(chat)
    return {"object": "chat.prompt", "model": model, "prompt": prompt}


@router.post("/completions", response_model=None)
async def completions(request: Request, svc: ServicesDep, user: UserDep) -> Response:
    body = await json_body(request, CompletionBody)
    completion = body.to_core(user)
    dispatcher = svc.dispatcher
    if not completion.stream:
        result = await cancel_on_disconnect(request, dispatcher.generate(completion))
        return JSONResponse(result)
    first, rest = await first_and_rest(dispatcher.stream(completion))
    return StreamingResponse(
        sse_events(first, rest, include_usage=body.include_usage),
        media_type="text/event-stream",
        headers=_SSE_HEADERS,
    )


def _with_fields(data: bytes, fields: dict[str, Any]) -> bytes:
    return json.dumps({**json.loads(data), **fields}, ensure_ascii=False).encode()
