"""TEMPORARY until the pipeline lands (core.events.delta_of): one chunk, parsed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from iaforall.core.types import Usage
from iaforall.engines.protocol import Chunk


@dataclass
class ToolCallDelta:
    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass
class Delta:
    text: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None


def delta_of(chunk: Chunk) -> Delta:
    parsed = json.loads(chunk.data)
    if not parsed.get("choices"):
        return Delta(usage=chunk.usage)
    choice = parsed["choices"][0]
    d = choice.get("delta") or {}
    calls = [
        ToolCallDelta(
            c["index"],
            c.get("id"),
            (c.get("function") or {}).get("name"),
            (c.get("function") or {}).get("arguments") or "",
        )
        for c in d.get("tool_calls") or ()
    ]
    return Delta(d.get("content") or "", calls, choice.get("finish_reason"), chunk.usage)
