"""/api/chat and /api/generate: Ollama's generation endpoints, thin translators onto the answer
pipeline, which gives them the same accounts, quotas, fair scheduling and published rules as /v1."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from iaforall.answering import Pipeline, Question
from iaforall.api.answering import PipelineDep, language_of, merged
from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body
from iaforall.api.errors import ollama_body
from iaforall.api.ollama.convert import Kind, Relay, ndjson, now_iso
from iaforall.api.ollama.schemas import ChatBody, GenerateBody
from iaforall.api.openapi import json_doc
from iaforall.api.streaming import cancel_on_disconnect, queue_headers
from iaforall.core.events import Decided, Event, Failed, QueueUpdate
from iaforall.core.types import CompletionRequest, GenerationRequest, Principal
from iaforall.policy.gate import decisions_field

router = APIRouter(prefix="/api", tags=["Ollama-compatible"])

PrincipalDep = Annotated[Principal, Depends(authenticate)]

NDJSON = "application/x-ndjson"


@router.post("/chat", response_model=None, openapi_extra=json_doc(ChatBody))
async def chat(request: Request, pipeline: PipelineDep, me: PrincipalDep) -> Response:
    body = await json_body(request, ChatBody)
    if not body.messages:  # Ollama's way to load (or, with keep_alive 0, unload) a model
        return await _load_only(pipeline, me, body.model, "chat", body.keep_alive)
    generation, ignored = body.to_core(me.user)
    question = _question(request, generation, body.keep_alive)
    return await _answer(request, pipeline, me, question, body.model, "chat", body.stream, ignored)


@router.post("/generate", response_model=None, openapi_extra=json_doc(GenerateBody))
async def generate(request: Request, pipeline: PipelineDep, me: PrincipalDep) -> Response:
    body = await json_body(request, GenerateBody)
    if not body.prompt and not body.images:
        return await _load_only(pipeline, me, body.model, "generate", body.keep_alive)
    generation, ignored = body.to_core(me.user)
    question = _question(request, generation, body.keep_alive)
    return await _answer(
        request, pipeline, me, question, body.model, "generate", body.stream, ignored
    )


def _question(
    request: Request, generation: GenerationRequest, keep_alive: float | str | None
) -> Question:
    return Question(
        generation,
        kind="completion" if isinstance(generation, CompletionRequest) else "chat",
        language=language_of(request),
        keep_alive="default" if keep_alive is None else keep_alive,  # Ollama's way
        fill_context=True,
    )


async def _load_only(
    pipeline: Pipeline, me: Principal, name: str, kind: Kind, keep_alive: float | str | None
) -> Response:
    unloaded = await pipeline.load(me, name, keep_alive)
    line: dict[str, Any] = {"model": name, "created_at": now_iso()}
    if kind == "chat":
        line["message"] = {"role": "assistant", "content": ""}
    else:
        line["response"] = ""
    return JSONResponse({**line, "done": True, "done_reason": "unload" if unloaded else "load"})


async def _answer(
    request: Request,
    pipeline: Pipeline,
    me: Principal,
    question: Question,
    shown: str,
    kind: Kind,
    stream: bool,
    ignored: list[str],
) -> Response:
    headers = {}
    if ignored:
        headers["X-IAForAll-Ignored-Options"] = ",".join(sorted(ignored))
    if not stream:
        result, admission = await cancel_on_disconnect(
            request, _whole(pipeline, me, question, shown, kind)
        )
        return JSONResponse(result, headers={**headers, **queue_headers(admission)})
    started = time.perf_counter_ns()  # Ollama's total_duration counts the wait and the load
    streamed = await pipeline.stream(me, question)
    relay = Relay(shown, kind, resident=streamed.was_loaded, started=started)
    return StreamingResponse(
        _lines(relay, streamed.events, decisions_field(streamed.decisions)),
        media_type=NDJSON,
        headers={**headers, **queue_headers(streamed.admission)},
    )


async def _whole(
    pipeline: Pipeline, me: Principal, question: Question, shown: str, kind: Kind
) -> tuple[dict[str, Any], QueueUpdate]:
    started = time.perf_counter_ns()  # Ollama's total_duration counts the wait and the load
    streamed = await pipeline.stream(me, question)
    relay = Relay(shown, kind, resident=streamed.was_loaded, started=started)
    fields = decisions_field(streamed.decisions)
    async with contextlib.aclosing(streamed.events) as events:
        async for event in events:
            if isinstance(event, Failed):
                raise event.error
            if isinstance(event, Decided):
                fields = merged(fields, event.field())
            else:
                relay.feed(event)
    result = relay.final(whole=True)
    if fields:
        result["iaforall"] = fields
    return result, streamed.admission


async def _lines(
    relay: Relay, events: AsyncGenerator[Event, None], fields: dict[str, Any]
) -> AsyncIterator[bytes]:
    """One JSON object a line; the rules' decisions ride in the `iaforall` field of the
    next line; an error after the start is a last `{"error": ...}` line."""
    async with contextlib.aclosing(events):  # a client that left stops its generation
        async for event in events:
            if isinstance(event, Decided):
                fields = merged(fields, event.field())
                continue
            if isinstance(event, Failed):
                yield ndjson(ollama_body(event.error))
                return
            line = relay.feed(event)
            if line is not None:
                if fields:
                    line["iaforall"] = {**line.get("iaforall", {}), **fields}
                    fields = {}
                yield ndjson(line)
    calls = relay.calls_line()
    if calls is not None:
        yield ndjson(calls)
    final = relay.final()
    if fields:
        final["iaforall"] = fields
    yield ndjson(final)
