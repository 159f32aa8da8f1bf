"""/v1/messages: Anthropic's Messages API, a thin translator onto the answer pipeline.

The `anthropic-version` and `anthropic-beta` headers are accepted whatever their value: the
shapes are those of the current API. The key comes as `x-api-key` or a bearer token
(api/auth.py reads both)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from iaforall.answering import Question
from iaforall.api.answering import PipelineDep, extension_fields, language_of
from iaforall.api.anthropic.events import MessageEvents, queue_ping
from iaforall.api.anthropic.replies import message_id, message_of
from iaforall.api.anthropic.schemas import CountTokensBody, MessagesBody
from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body
from iaforall.api.errors import anthropic_sse_error
from iaforall.api.openapi import json_doc
from iaforall.api.streaming import SSE_HEADERS, cancel_on_disconnect, queue_headers
from iaforall.core.events import Chunk, Decided, Event, Failed, QueueUpdate
from iaforall.core.types import Principal

router = APIRouter(prefix="/v1", tags=["Anthropic-compatible"])

PrincipalDep = Annotated[Principal, Depends(authenticate)]


@router.post("/messages", response_model=None, openapi_extra=json_doc(MessagesBody))
async def create_message(request: Request, pipeline: PipelineDep, me: PrincipalDep) -> Response:
    """A message, whole or streamed as Anthropic's events, with our `iaforall` field: the
    published rules' decisions, and the citations and prompt when asked for."""
    body = await json_body(request, MessagesBody)
    question = _question(request, body, me)
    stops = question.generation.sampling.stop
    cites = body.iaforall.knowledge is not None
    if not body.stream:
        whole = await cancel_on_disconnect(request, pipeline.whole(me, question))
        message = message_of(whole.result, model=whole.model, stops=stops)
        fields = extension_fields(whole, cites=cites)
        if fields:
            message["iaforall"] = fields
        return JSONResponse(message, headers=queue_headers(whole.admission))
    streamed = await pipeline.stream(me, question)
    fields = extension_fields(streamed, cites=cites)
    writer = MessageEvents(message_id(), streamed.model, stops)
    return StreamingResponse(
        _sse(writer, streamed.events, fields),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **queue_headers(streamed.admission)},
    )


@router.post("/messages/count_tokens", openapi_extra=json_doc(CountTokensBody))
async def count_tokens(request: Request, pipeline: PipelineDep, me: PrincipalDep) -> dict[str, Any]:
    """The prompt's length in the model's own tokens: its chat template rendered (system
    prompt and tools included), then tokenized by llama.cpp, as the model would be given it."""
    body = await json_body(request, CountTokensBody)
    question = Question(body.to_core(me.user), knowledge=body.iaforall.knowledge_ask())
    _, tokens = await pipeline.count_tokens(question)
    return {"input_tokens": tokens}


def _question(request: Request, body: MessagesBody, me: Principal) -> Question:
    extension = body.iaforall
    return Question(
        body.to_core(me.user),
        kind="chat",
        language=language_of(request),
        knowledge=body.iaforall.knowledge_ask(),
        keep_alive=extension.keep_alive,
        return_prompt=extension.return_prompt,
        # `max_tokens` is required, and clients (Claude Code: 32000) ask for far more than a
        # local model's context: "at most", lowered to the context rather than refused.
        fill_context=True,
    )


async def _sse(
    writer: MessageEvents, events: AsyncGenerator[Event, None], fields: dict[str, Any]
) -> AsyncIterator[bytes]:
    """`message_start` at once (our fields in its message), a `ping` with the place in line
    while waiting, the blocks as the chunks come, the output rules' decisions on the event
    after them, then the end; an `error` event instead if the answer fails midway."""
    yield writer.start(fields)
    async with contextlib.aclosing(events):  # a client that left stops its generation
        async for event in events:
            if isinstance(event, Chunk):
                yield writer.feed(event)
            elif isinstance(event, QueueUpdate):
                yield queue_ping(event.position, event.wait_s, paused=event.paused)
            elif isinstance(event, Decided):
                writer.attach(event.field())
            elif isinstance(event, Failed):
                yield anthropic_sse_error(event.error)
                return
    yield writer.finish()
