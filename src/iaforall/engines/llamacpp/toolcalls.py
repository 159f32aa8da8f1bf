"""Tool calls that a model writes as bare JSON, recovered into OpenAI `tool_calls`.

llama.cpp parses the tool-call syntax a chat template declares (`<tool_call>...</tool_call>`
for Qwen2.5). Some models answer with the bare JSON object instead — Qwen2.5-Coder does so
consistently — and the call would reach the client as text. When a request offers tools and
the whole answer is such an object naming one of them, we return it as a tool call; any other
answer passes through untouched. A forced tool choice is enforced by a JSON schema over the
offered functions, which llama.cpp turns into a grammar.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from iaforall.core.events import Chunk
from iaforall.core.types import ChatRequest

_JSON_START = ("{", "[", "```")


def tool_names(request: ChatRequest) -> frozenset[str]:
    return frozenset(str(t.get("function", {}).get("name")) for t in request.tools)


def forced_call_format(request: ChatRequest) -> dict[str, Any] | None:
    """A response_format that makes the model call a tool, when the request demands one."""
    choice = request.tool_choice
    if not request.tools or request.response_format is not None:
        return None
    if choice == "required":
        functions = [t["function"] for t in request.tools]
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        wanted = choice["function"].get("name")
        functions = [t["function"] for t in request.tools if t["function"].get("name") == wanted]
    else:
        return None
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"const": f["name"]},
                "arguments": f.get("parameters") or {"type": "object"},
            },
            "required": ["name", "arguments"],
        }
        for f in functions
    ]
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return {"type": "json_schema", "json_schema": {"name": "tool_call", "schema": schema}}


def parse_calls(text: str, names: frozenset[str]) -> list[dict[str, Any]] | None:
    """OpenAI tool calls when `text` is nothing but JSON call(s) to offered tools."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rstrip().removesuffix("```")
    try:
        value = json.loads(body)
    except ValueError:
        return None
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict) or item.get("name") not in names:
            return None
        arguments = item.get("arguments", item.get("parameters", {}))
        if not isinstance(arguments, dict | str):
            return None
        calls.append(
            {
                "id": f"call_{secrets.token_hex(12)}",
                "type": "function",
                "function": {
                    "name": item["name"],
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                },
            }
        )
    return calls or None


async def recover_in_stream(
    chunks: AsyncGenerator[Chunk, None], names: frozenset[str]
) -> AsyncGenerator[Chunk, None]:
    """Chunks pass through, except an answer that starts like JSON: it is held until the end,
    then sent as one tool-call delta if it is a call, or released as it came if it is not."""
    held: list[Chunk] = []
    text = ""
    holding: bool | None = None  # None: not decided yet (no visible character so far)
    async with contextlib.aclosing(chunks):  # a client that leaves stops the engine
        async for chunk in chunks:
            if holding is False or chunk.usage_only:
                yield chunk
                continue
            parsed = json.loads(chunk.data)
            choice = (parsed.get("choices") or [{}])[0]
            text += (choice.get("delta") or {}).get("content") or ""
            held.append(chunk)
            if holding is None and text.strip():
                holding = text.lstrip().startswith(_JSON_START)
                if not holding:
                    for waiting in held:
                        yield waiting
                    held = []
                    continue
            if choice.get("finish_reason") is None:
                continue
            calls = parse_calls(text, names) if holding else None
            if calls:
                for synthesized in _call_chunks(parsed, calls):
                    yield synthesized
            else:
                for waiting in held:
                    yield waiting
            held, holding = [], False
        for waiting in held:
            yield waiting


def _call_chunks(finish: dict[str, Any], calls: Sequence[dict[str, Any]]) -> list[Chunk]:
    base = {k: v for k, v in finish.items() if k not in ("choices", "usage", "timings")}
    delta = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"index": i, **call} for i, call in enumerate(calls)],
    }
    return [
        Chunk(_dump({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})),
        Chunk(
            _dump({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
        ),
    ]


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
