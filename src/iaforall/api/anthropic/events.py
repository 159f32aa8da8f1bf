"""A streamed answer as Anthropic's events: `message_start`, then for each content block
`content_block_start`, its `content_block_delta`s (`text_delta`, `input_json_delta`) and
`content_block_stop`, then `message_delta` (stop reason, usage) and `message_stop`.

Pure: `MessageEvents` is fed llama.cpp's OpenAI chunks (their delta parsed once, in core) and
gives back the bytes of the events, so it is tested on recorded chunks without a server.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from iaforall.api.anthropic.replies import stop_of, tool_use_id
from iaforall.core.events import Chunk, ToolCallDelta
from iaforall.core.types import Usage


def event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + json.dumps(data).encode() + b"\n\n"


def queue_ping(position: int, wait_s: float, *, paused: bool = False) -> bytes:
    """A `ping` (clients skip it) that tells people and scripts their place in line (and,
    `paused`, that the answer waits to resume)."""
    place: dict[str, object] = {"position": position, "wait_s": math.ceil(wait_s)}
    if paused:
        place["paused"] = True
    return event("ping", {"type": "ping", "iaforall": {"queue": place}})


class MessageEvents:
    """The events of one streamed message, block by block."""

    def __init__(self, message_id: str, model: str, stops: tuple[str, ...]) -> None:
        self.message_id = message_id
        self.model = model
        self.stops = stops
        self._index = -1  # the open block's index
        self._open: Literal["text", "tool_use"] | None = None
        self._calls: dict[int, int] = {}  # OpenAI tool call index -> our block index
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._pending: dict[str, Any] = {}  # our fields, riding on the next event

    def start(self, fields: dict[str, Any] | None = None) -> bytes:
        """`message_start` (with our `iaforall` fields, when any), then a first `ping`."""
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # llama.cpp counts the prompt by the end: the count comes in message_delta
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        if fields:
            message["iaforall"] = fields
        return event("message_start", {"type": "message_start", "message": message}) + event(
            "ping", {"type": "ping"}
        )

    def attach(self, fields: dict[str, Any]) -> None:
        """Our fields (e.g. rule decisions on the output) ride on the next event."""
        self._pending = {**self._pending, **fields}

    def feed(self, chunk: Chunk) -> bytes:
        delta = chunk.delta
        out = b""
        if delta.text:
            out += self._open_text()
            out += self._delta({"type": "text_delta", "text": delta.text})
        for piece in delta.tool_calls:
            out += self._tool_piece(piece)
        if delta.finish_reason is not None:
            self._finish = delta.finish_reason
        if chunk.usage is not None:
            self._usage = chunk.usage
        return out

    def finish(self) -> bytes:
        """Close the open block, then `message_delta` and `message_stop`."""
        out = self._close()
        finish = "tool_calls" if self._calls else self._finish
        stop_reason, stop_sequence = stop_of(finish, self.stops)
        usage = self._usage
        data: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": {
                "input_tokens": usage.prompt_tokens if usage else 0,
                "output_tokens": usage.completion_tokens if usage else 0,
            },
        }
        out += event("message_delta", self._with_pending(data))
        return out + event("message_stop", {"type": "message_stop"})

    def _with_pending(self, data: dict[str, Any]) -> dict[str, Any]:
        if self._pending:
            data["iaforall"], self._pending = self._pending, {}
        return data

    def _delta(self, delta: dict[str, Any]) -> bytes:
        data = {"type": "content_block_delta", "index": self._index, "delta": delta}
        return event("content_block_delta", self._with_pending(data))

    def _open_text(self) -> bytes:
        if self._open == "text":
            return b""
        return self._close() + self._start_block("text", {"type": "text", "text": ""})

    def _tool_piece(self, piece: ToolCallDelta) -> bytes:
        out = b""
        if piece.index not in self._calls:
            block = {
                "type": "tool_use",
                "id": piece.id or tool_use_id(),
                "name": piece.name or "",
                "input": {},
            }
            out += self._close() + self._start_block("tool_use", block)
            self._calls[piece.index] = self._index
        elif self._calls[piece.index] != self._index:
            return out  # a late piece of a call already closed: Anthropic cannot reopen it
        if piece.arguments:
            out += self._delta({"type": "input_json_delta", "partial_json": piece.arguments})
        return out

    def _start_block(self, kind: Literal["text", "tool_use"], block: dict[str, Any]) -> bytes:
        self._index += 1
        self._open = kind
        data = {"type": "content_block_start", "index": self._index, "content_block": block}
        return event("content_block_start", data)

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return event("content_block_stop", {"type": "content_block_stop", "index": self._index})
