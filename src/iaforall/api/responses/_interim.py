"""INTERIM, removed when the answer pipeline lands: the pipeline's announced shape over
today's gate and dispatcher, so the adapter can be tested end to end meanwhile."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from iaforall.api.images import with_images
from iaforall.api.policy import policy_of, preferred_language, rules_of
from iaforall.core.types import ChatRequest, Principal, Usage
from iaforall.engines.protocol import Chunk
from iaforall.policy.engine import Decision
from iaforall.scheduling.dispatch import QueueUpdate
from iaforall.services import Services


@dataclass(frozen=True)
class ToolCallDelta:
    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True)
class Delta:
    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None


def delta_of(chunk: Chunk) -> Delta:
    data = json.loads(chunk.data)
    choice = (data.get("choices") or [{}])[0]
    delta = choice.get("delta") or {}
    calls = tuple(
        ToolCallDelta(
            c.get("index", 0),
            c.get("id"),
            (c.get("function") or {}).get("name"),
            (c.get("function") or {}).get("arguments") or "",
        )
        for c in delta.get("tool_calls") or ()
    )
    return Delta(delta.get("content") or "", calls, choice.get("finish_reason"), chunk.usage)


@dataclass
class Whole:
    result: dict[str, Any]
    admission: QueueUpdate
    model: str
    decisions: list[Decision] = field(default_factory=list)
    citations: list[Any] = field(default_factory=list)
    prompt: str | None = None


@dataclass
class Streamed:
    admission: QueueUpdate
    model: str
    events: AsyncGenerator[QueueUpdate | Chunk, None]
    decisions: list[Decision] = field(default_factory=list)
    citations: list[Any] = field(default_factory=list)
    prompt: str | None = None


async def _prepared(
    request: Request, svc: Services, chat: ChatRequest
) -> tuple[ChatRequest, list[Decision], str]:
    chat = await with_images(request, svc, chat)
    policy = await policy_of(await rules_of(request), svc)
    language = preferred_language(request.headers.get("accept-language", ""))
    decisions = await policy.check_input(chat, kind="chat", language=language)
    model, _ = svc.dispatcher.check(chat)
    return chat, decisions, model


async def whole(
    request: Request, svc: Services, me: Principal, chat: ChatRequest, return_prompt: bool
) -> Whole:
    chat, decisions, model = await _prepared(request, svc, chat)
    admission: list[QueueUpdate] = []

    async def work(admitted: Any) -> dict[str, Any]:
        return await svc.dispatcher.generate(admitted, on_admission=admission.append)

    result = await svc.gate.generate(me, chat, work)
    prompt = await svc.dispatcher.render_prompt(chat) if return_prompt else None
    return Whole(result, admission[0], model, decisions, prompt=prompt)


async def stream(
    request: Request, svc: Services, me: Principal, chat: ChatRequest, return_prompt: bool
) -> Streamed:
    chat, decisions, model = await _prepared(request, svc, chat)
    prompt = await svc.dispatcher.render_prompt(chat) if return_prompt else None
    items = svc.gate.stream(me, chat, svc.dispatcher.stream_queued)
    first = await anext(items)
    assert isinstance(first, QueueUpdate)
    return Streamed(first, model, items, decisions, prompt=prompt)
