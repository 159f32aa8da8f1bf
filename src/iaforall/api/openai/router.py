"""/v1: the OpenAI-compatible endpoints, thin adapters onto the dispatcher."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from iaforall.api.deps import json_body, services, user_of
from iaforall.api.openai.schemas import ChatCompletionBody, CompletionBody
from iaforall.api.streaming import (
    Item,
    cancel_on_disconnect,
    queue_headers,
    sse_events,
    start_stream,
)
from iaforall.core.errors import ModelNotFound
from iaforall.core.types import GenerationRequest, UserId
from iaforall.engines.protocol import Chunk
from iaforall.models.store import ModelInfo
from iaforall.scheduling.dispatch import Dispatcher, QueueUpdate
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
        result, admission = await _generate(request, dispatcher, chat)
        if prompt is not None:
            result["iaforall"] = {"prompt": prompt}
        return JSONResponse(result, headers=queue_headers(admission))
    items = dispatcher.stream_queued(chat)
    if prompt is not None:
        items = _with_prompt(items, prompt)
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
async def completions(request: Request, svc: ServicesDep, user: UserDep) -> Response:
    body = await json_body(request, CompletionBody)
    completion = body.to_core(user)
    dispatcher = svc.dispatcher
    if not completion.stream:
        result, admission = await _generate(request, dispatcher, completion)
        return JSONResponse(result, headers=queue_headers(admission))
    return await _sse_response(
        dispatcher.stream_queued(completion), include_usage=body.include_usage
    )


async def _generate(
    request: Request, dispatcher: Dispatcher, generation: GenerationRequest
) -> tuple[dict[str, Any], QueueUpdate]:
    admission: list[QueueUpdate] = []
    result = await cancel_on_disconnect(
        request, dispatcher.generate(generation, on_admission=admission.append)
    )
    return result, admission[0]


async def _sse_response(items: AsyncGenerator[Item, None], *, include_usage: bool) -> Response:
    """A request made to wait starts streaming at once, with its place in line as comments;
    one served at once waits for its first chunk, so early errors keep their HTTP status."""
    admission, first, rest = await start_stream(items)
    return StreamingResponse(
        sse_events(first, rest, include_usage=include_usage),
        media_type="text/event-stream",
        headers={**_SSE_HEADERS, **queue_headers(admission)},
    )


async def _with_prompt(
    items: AsyncGenerator[Item, None], prompt: str
) -> AsyncGenerator[Item, None]:
    """The first chunk carries the prompt; only it is re-encoded, and only when asked."""
    extension = {"iaforall": {"prompt": prompt}}
    async with contextlib.aclosing(items):
        async for item in items:
            if isinstance(item, Chunk) and extension:
                item = Chunk(_with_fields(item.data, extension), item.usage, item.usage_only)
                extension = {}
            yield item


def _with_fields(data: bytes, fields: dict[str, Any]) -> bytes:
    return json.dumps({**json.loads(data), **fields}, ensure_ascii=False).encode()
