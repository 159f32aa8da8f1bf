"""/v1/responses: the OpenAI Responses API, translated onto the one answer pipeline.

Stored responses (`store`, on by default as OpenAI's) are their owner's alone: another
person's id is "not found". A response goes on from an earlier one with
`previous_response_id`: the earlier input items and output come first, its instructions not.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from iaforall.answering import Question, Streamed
from iaforall.api.answering import PipelineDep, extension_fields, language_of
from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services
from iaforall.api.openapi import json_doc
from iaforall.api.responses.events import ResponseEvents, sse_frame
from iaforall.api.responses.schemas import ResponseBody
from iaforall.api.responses.translate import Shell, chat_request, input_items, whole_response
from iaforall.api.streaming import SSE_HEADERS, cancel_on_disconnect, queue_headers
from iaforall.core.errors import NotFound
from iaforall.core.types import Principal, UserId
from iaforall.services import Services
from iaforall.store.responses import ResponseStore, not_found

router = APIRouter(prefix="/v1", tags=["OpenAI Responses"])

ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]


def _store(svc: ServicesDep) -> ResponseStore:
    return ResponseStore(svc.database)


StoreDep = Annotated[ResponseStore, Depends(_store)]


@router.post("/responses", response_model=None, openapi_extra=json_doc(ResponseBody))
async def create_response(
    request: Request, pipeline: PipelineDep, me: PrincipalDep, store: StoreDep
) -> Response:
    body = await json_body(request, ResponseBody)
    earlier = await _chain(store, me.user, body.previous_response_id)
    context = [*earlier, *input_items(body, earlier)]
    extension = body.iaforall
    question = Question(
        chat_request(body, context, me.user),
        kind="chat",
        language=language_of(request),
        knowledge=extension.knowledge_ask(),
        keep_alive=extension.keep_alive,
        return_prompt=extension.return_prompt,
    )

    async def keep(response: dict[str, Any]) -> None:
        if body.store is not False:
            await run_in_threadpool(store.save, me.user, response, context)

    if not body.stream:
        whole = await cancel_on_disconnect(request, pipeline.whole(me, question))
        response = whole_response(Shell.new(body, whole.model), whole.result)
        extra = extension_fields(whole, cites=body.iaforall.knowledge is not None)
        if extra:
            response["iaforall"] = extra
        await keep(response)
        return JSONResponse(response, headers=queue_headers(whole.admission))
    streamed = await pipeline.stream(me, question)
    events = ResponseEvents(
        Shell.new(body, streamed.model),
        extra=extension_fields(streamed, cites=body.iaforall.knowledge is not None),
    )
    return StreamingResponse(
        _frames(events, streamed, keep),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **queue_headers(streamed.admission)},
    )


async def _chain(
    store: ResponseStore, user: UserId, previous_id: str | None
) -> list[dict[str, Any]]:
    """The items a response goes on from: the earlier one's input items, then its output."""
    if previous_id is None:
        return []
    try:
        earlier = await run_in_threadpool(store.get, user, previous_id)
    except NotFound:
        raise not_found(previous_id, "previous_response_id") from None
    return [*earlier.input_items, *earlier.response.get("output", [])]


async def _frames(
    events: ResponseEvents,
    streamed: Streamed,
    keep: Callable[[dict[str, Any]], Awaitable[None]],
) -> AsyncIterator[bytes]:
    """The events; the last ones once the response is stored (a client that reads it back
    as soon as the stream ends finds it). A failed answer is not stored."""
    admission = streamed.admission
    for event in events.created(admission.position, admission.wait_s):
        yield sse_frame(event)
    async with contextlib.aclosing(streamed.events):  # a client that left stops its answer
        async for item in streamed.events:
            for event in events.on(item):
                yield sse_frame(event)
    if events.final is not None:  # failed: its events are already out
        return
    last = events.completed()
    assert events.final is not None
    await keep(events.final)
    for event in last:
        yield sse_frame(event)


@router.get("/responses/{response_id}")
async def get_response(response_id: str, me: PrincipalDep, store: StoreDep) -> dict[str, Any]:
    kept = await run_in_threadpool(store.get, me.user, response_id)
    return kept.response


@router.delete("/responses/{response_id}")
async def delete_response(response_id: str, me: PrincipalDep, store: StoreDep) -> dict[str, Any]:
    await run_in_threadpool(store.delete, me.user, response_id)
    return {"id": response_id, "object": "response", "deleted": True}


@router.get("/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    me: PrincipalDep,
    store: StoreDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    """The items the response was given, its chain's first (newest first by default)."""
    kept = await run_in_threadpool(store.get, me.user, response_id)
    items = list(kept.input_items if order == "asc" else reversed(kept.input_items))
    if after is not None:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }
