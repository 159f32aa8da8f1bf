"""/api/chat and /api/generate: Ollama's generation endpoints, thin adapters onto the same
accounts, quotas, fair scheduling and published rules as /v1."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services
from iaforall.api.errors import ollama_body
from iaforall.api.images import with_images
from iaforall.api.ollama.convert import Kind, Relay, ndjson, now_iso
from iaforall.api.ollama.options import keep_alive_for
from iaforall.api.ollama.schemas import ChatBody, GenerateBody
from iaforall.api.openapi import json_doc
from iaforall.api.policing import checked_output
from iaforall.api.policy import policy_of, preferred_language
from iaforall.api.streaming import Item, cancel_on_disconnect, queue_headers, start_stream
from iaforall.core.errors import IAForAllError
from iaforall.core.types import (
    ChatRequest,
    CompletionRequest,
    GenerationRequest,
    Principal,
)
from iaforall.policy.gate import Policy, RequestKind, decisions_field
from iaforall.scheduling.dispatch import QueueUpdate
from iaforall.services import Services

router = APIRouter(prefix="/api", tags=["Ollama-compatible"])

ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
PolicyDep = Annotated[Policy, Depends(policy_of)]

NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Asked:
    """Who asked, through which request, under which rules, and what to do after."""

    request: Request
    svc: Services
    me: Principal
    policy: Policy
    stream: bool
    keep_alive: float | None
    ignored: list[str]


@router.post("/chat", response_model=None, openapi_extra=json_doc(ChatBody))
async def chat(request: Request, svc: ServicesDep, me: PrincipalDep, policy: PolicyDep) -> Response:
    body = await json_body(request, ChatBody)
    keep_alive = keep_alive_for(me, body.keep_alive, svc.settings.engine.keep_alive)
    if not body.messages:  # Ollama's way to load (or, with keep_alive 0, unload) a model
        return await _load_only(svc, body.model, "chat", keep_alive)
    generation, ignored = body.to_core(me.user)
    generation = await with_images(request, svc, generation)
    asked = Asked(request, svc, me, policy, body.stream, keep_alive, ignored)
    return await _answer(asked, generation, body.model, "chat")


@router.post("/generate", response_model=None, openapi_extra=json_doc(GenerateBody))
async def generate(
    request: Request, svc: ServicesDep, me: PrincipalDep, policy: PolicyDep
) -> Response:
    body = await json_body(request, GenerateBody)
    keep_alive = keep_alive_for(me, body.keep_alive, svc.settings.engine.keep_alive)
    if not body.prompt and not body.images:
        return await _load_only(svc, body.model, "generate", keep_alive)
    generation, ignored = body.to_core(me.user)
    if isinstance(generation, ChatRequest):
        generation = await with_images(request, svc, generation)
    asked = Asked(request, svc, me, policy, body.stream, keep_alive, ignored)
    return await _answer(asked, generation, body.model, "generate")


async def _load_only(svc: Services, name: str, kind: Kind, keep_alive: float | None) -> Response:
    model, _ = svc.pool.resolve(name)
    if keep_alive == 0:
        await svc.pool.keep(model, 0)
        reason = "unload"
    else:
        await svc.pool.load(model)
        await svc.pool.keep(model, keep_alive)
        reason = "load"
    line: dict[str, Any] = {"model": name, "created_at": now_iso()}
    if kind == "chat":
        line["message"] = {"role": "assistant", "content": ""}
    else:
        line["response"] = ""
    return JSONResponse({**line, "done": True, "done_reason": reason})


async def _answer(asked: Asked, generation: GenerationRequest, shown: str, kind: Kind) -> Response:
    svc, policy = asked.svc, asked.policy
    language = preferred_language(asked.request.headers.get("accept-language", ""))
    model, capabilities = svc.pool.resolve(generation.model)  # an unknown model: 404 first
    generation = _within_context(generation, capabilities.context_length)
    rule_kind: RequestKind = "completion" if isinstance(generation, CompletionRequest) else "chat"
    decisions = await policy.check_input(generation, kind=rule_kind, language=language)
    relay = Relay(shown, kind, resident=model in svc.pool.residents())
    items = checked_output(
        svc.gate.stream(asked.me, generation, svc.dispatcher.stream_queued),
        policy,
        generation,
        kind=rule_kind,
        language=language,
    )
    headers = {}
    if asked.ignored:
        headers["X-IAForAll-Ignored-Options"] = ",".join(sorted(asked.ignored))

    async def after() -> None:
        await svc.pool.keep(model, asked.keep_alive)  # 0 unloads, -1 keeps, None: the default

    if not asked.stream:
        try:
            admission, result = await cancel_on_disconnect(asked.request, _whole(relay, items))
        finally:
            await after()
        said = decisions_field(decisions).get("decisions", [])
        said += result.get("iaforall", {}).get("decisions", [])
        if said:
            result["iaforall"] = {**result.get("iaforall", {}), "decisions": said}
        return JSONResponse(result, headers={**headers, **queue_headers(admission)})
    admission, first, rest = await start_stream(items)
    return StreamingResponse(
        _lines(relay, first, rest, decisions_field(decisions), after),
        media_type=NDJSON,
        headers={**headers, **queue_headers(admission)},
    )


def _within_context(generation: GenerationRequest, context_length: int) -> GenerationRequest:
    """Ollama generates until the context is full when `num_predict` asks for more (where /v1
    refuses): the same here, so clients that ask for much work unchanged."""
    asked = generation.sampling.max_tokens
    if asked is None or asked <= context_length:
        return generation
    return replace(generation, sampling=replace(generation.sampling, max_tokens=context_length))


async def _whole(
    relay: Relay, items: AsyncGenerator[Item, None]
) -> tuple[QueueUpdate, dict[str, Any]]:
    admission: QueueUpdate | None = None
    async with contextlib.aclosing(items):
        async for item in items:
            if admission is None and isinstance(item, QueueUpdate):
                admission = item
            relay.feed(item)
    return admission or QueueUpdate(0, 0.0), relay.final(whole=True)


async def _lines(
    relay: Relay,
    first: Item | None,
    rest: AsyncGenerator[Item, None],
    fields: dict[str, Any],
    after: Callable[[], Awaitable[None]],
) -> AsyncIterator[bytes]:
    """One JSON object a line; the rules' input decisions ride in the first line's
    `iaforall` field; an error after the start is a last `{"error": ...}` line."""
    try:
        item = first
        while item is not None:
            line = relay.feed(item)
            if line is not None:
                if fields:
                    line["iaforall"] = {**line.get("iaforall", {}), **fields}
                    fields = {}
                yield ndjson(line)
            item = await anext(rest, None)
        calls = relay.calls_line()
        if calls is not None:
            yield ndjson(calls)
        final = relay.final()
        if fields:
            final["iaforall"] = fields
        yield ndjson(final)
    except IAForAllError as exc:
        yield ndjson(ollama_body(exc))
    finally:
        await rest.aclose()  # a client that left stops its generation at once
        await after()
