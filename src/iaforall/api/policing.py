"""The published rules on a streamed answer: decisions ride in the chunks' `iaforall` field
(unknown fields, which OpenAI clients keep and ignore), never as a hidden change."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from iaforall.api.streaming import Item
from iaforall.core.types import GenerationRequest
from iaforall.engines.protocol import Chunk
from iaforall.policy.engine import Decision
from iaforall.policy.gate import Policy, RequestKind, decisions_field


def text_of_chunk(data: bytes) -> str:
    """The text a chat or completion chunk adds."""
    choices = json.loads(data).get("choices") or [{}]
    choice = choices[0]
    return str((choice.get("delta") or {}).get("content") or choice.get("text") or "")


def with_fields(data: bytes, fields: dict[str, Any]) -> bytes:
    """A chunk with `iaforall` fields merged in (re-encoded; done once per answer at most)."""
    chunk = json.loads(data)
    chunk["iaforall"] = {**chunk.get("iaforall", {}), **fields}
    return json.dumps(chunk, ensure_ascii=False).encode()


async def first_chunk_with(
    items: AsyncGenerator[Item, None], fields: dict[str, Any]
) -> AsyncGenerator[Item, None]:
    async with contextlib.aclosing(items):
        async for item in items:
            if fields and isinstance(item, Chunk) and not item.usage_only:
                item = Chunk(with_fields(item.data, fields), item.usage, item.usage_only)
                fields = {}
            yield item


async def checked_output(
    items: AsyncGenerator[Item, None],
    policy: Policy,
    request: GenerationRequest,
    *,
    kind: RequestKind,
    language: str | None,
) -> AsyncGenerator[Item, None]:
    """With output rules, the last text chunk is held until the whole answer is checked, so
    its decisions can ride in it (a block ends the stream with the error event instead)."""
    if not policy.rules.for_stage("output"):
        async with contextlib.aclosing(items):
            async for item in items:
                yield item
        return
    text: list[str] = []
    held: list[Item] = []  # the last text chunk and what followed it
    async with contextlib.aclosing(items):
        async for item in items:
            if isinstance(item, Chunk) and not item.usage_only:
                for earlier in held:
                    yield earlier
                held = [item]
                text.append(text_of_chunk(item.data))
            elif held:
                held.append(item)
            else:
                yield item
        decisions: Sequence[Decision] = await policy.check_output(
            "".join(text), request, kind=kind, language=language
        )
        if held and decisions:
            last = held[0]
            assert isinstance(last, Chunk)
            held[0] = Chunk(with_fields(last.data, decisions_field(decisions)), last.usage)
        for item in held:
            yield item
