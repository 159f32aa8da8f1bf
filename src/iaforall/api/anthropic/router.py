"""/v1/messages: Anthropic's Messages API, a thin adapter onto the answer pipeline."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from iaforall.api.anthropic.events import MessageEvents, queue_ping
from iaforall.api.anthropic.interim import delta_of
from iaforall.api.anthropic.replies import message_id, message_of
from iaforall.api.anthropic.schemas import CountTokensBody, MessagesBody
from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services
from iaforall.api.errors import anthropic_sse_error
from iaforall.api.images import with_images
from iaforall.api.openapi import json_doc
from iaforall.api.streaming import Item, cancel_on_disconnect, queue_headers, start_stream
from iaforall.core.errors import IAForAllError
from iaforall.core.types import GenerationRequest, Principal
from iaforall.engines.protocol import Chunk
from iaforall.scheduling.dispatch import QueueUpdate
from iaforall.services import Services

router = APIRouter(prefix="/v1", tags=["Anthropic-compatible"])

ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("/messages", response_model=None, openapi_extra=json_doc(MessagesBody))
async def create_message(request: Request, svc: ServicesDep, me: PrincipalDep) -> Response:
    """A message, whole or streamed as Anthropic's events. The `anthropic-version` header is
    accepted whatever its value: the shapes are those of the current API."""
    body = await json_body(request, MessagesBody)
    chat = await with_images(request, svc, body.to_core(me.user))
    stops = chat.sampling.stop
    if not body.stream:
        result, admission = await _generate(request, svc, me, chat)
        message = message_of(result, model=str(result.get("model") or chat.model), stops=stops)
        return JSONResponse(message, headers=queue_headers(admission))
    items = svc.gate.stream(me, chat, svc.dispatcher.stream_queued)
    admission, first, rest = await start_stream(items)
    model, _ = svc.pool.resolve(chat.model)
    writer = MessageEvents(message_id(), model, stops)
    return StreamingResponse(
        _events(writer, first, rest),
        media_type="text/event-stream",
        headers={**_SSE_HEADERS, **queue_headers(admission)},
    )


@router.post("/messages/count_tokens", openapi_extra=json_doc(CountTokensBody))
async def count_tokens(request: Request, svc: ServicesDep, me: PrincipalDep) -> dict[str, Any]:
    """The prompt's length in the model's own tokens: its template rendered, then tokenized
    by llama.cpp (tools and system prompt included), as the model would be given it."""
    body = await json_body(request, CountTokensBody)
    chat = await with_images(request, svc, body.to_core(me.user))
    return {"input_tokens": await svc.dispatcher.count_tokens(chat)}


async def _generate(
    request: Request, svc: Services, me: Principal, generation: GenerationRequest
) -> tuple[dict[str, Any], QueueUpdate]:
    admission: list[QueueUpdate] = []

    async def work(admitted: GenerationRequest) -> dict[str, Any]:
        return await svc.dispatcher.generate(admitted, on_admission=admission.append)

    result = await cancel_on_disconnect(request, svc.gate.generate(me, generation, work))
    return result, admission[0]


async def _events(
    writer: MessageEvents, first: Item | None, rest: AsyncGenerator[Item, None]
) -> AsyncIterator[bytes]:
    """`message_start` at once, a `ping` with the place in line while waiting, the blocks as
    the chunks come, then the end; an `error` event if the answer fails midway."""
    yield writer.start()
    try:
        item = first
        while item is not None:
            if isinstance(item, QueueUpdate):
                if item.position > 0:
                    yield queue_ping(item.position, item.wait_s)
            elif isinstance(item, Chunk):
                yield writer.feed(delta_of(item))
            item = await anext(rest, None)
    except IAForAllError as exc:
        yield anthropic_sse_error(exc)
        return
    finally:
        await rest.aclose()  # a client that left stops its generation at once
    yield writer.finish()
