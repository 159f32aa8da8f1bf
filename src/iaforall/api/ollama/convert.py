"""Engine chunks (OpenAI chunk JSON) -> Ollama's NDJSON lines, with its timing fields.

The durations are nanoseconds. The engine's own timings (llama.cpp's `timings`: prompt and
generation milliseconds) are used when the chunks carry them; otherwise they are measured here:
prompt evaluation from the request's turn to its first token, generation from there to the end.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from iaforall.core.events import Chunk, QueueUpdate, ToolCallDelta

Kind = Literal["chat", "generate"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def ndjson(line: dict[str, Any]) -> bytes:
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


@dataclass
class Relay:
    """One answer's lines. Feed it the items of the stream; `final()` is the `done` line."""

    model: str
    kind: Kind
    resident: bool  # the model was loaded when the request came: no load time
    started: int = field(default_factory=time.perf_counter_ns)
    turn: int | None = None
    first: int | None = None
    text: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    done_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timings: dict[str, Any] = field(default_factory=dict)

    def line(self, text: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        line: dict[str, Any] = {"model": self.model, "created_at": now_iso()}
        if self.kind == "chat":
            line["message"] = {"role": "assistant", "content": text}
        else:
            line["response"] = text
        line["done"] = False
        if fields:
            line["iaforall"] = fields
        return line

    def feed(self, item: Chunk | QueueUpdate) -> dict[str, Any] | None:
        """The line for this item, if it makes one."""
        if isinstance(item, QueueUpdate):
            if item.position == 0:
                self.turn = time.perf_counter_ns()
                return None
            queue: dict[str, Any] = {"position": item.position, "wait_s": round(item.wait_s, 1)}
            if item.paused:
                queue["paused"] = True
            return self.line("", {"queue": queue})
        if item.usage is not None:
            self.prompt_tokens = item.usage.prompt_tokens
            self.completion_tokens = item.usage.completion_tokens
        delta = item.delta
        if delta.timings is not None:
            self.timings = delta.timings
        if delta.finish_reason == "length":
            self.done_reason = "length"
        for call in delta.tool_calls:
            self._add_call(call)
        if not delta.text:
            return None
        if self.first is None:
            self.first = time.perf_counter_ns()
        self.text.append(delta.text)
        return self.line(delta.text)

    def _add_call(self, delta: ToolCallDelta) -> None:
        call = self.calls.setdefault(delta.index, {"args": []})
        if delta.name:
            call["name"] = delta.name
        if delta.arguments:
            call["args"].append(delta.arguments)

    def tool_calls(self) -> list[dict[str, Any]]:
        out = []
        for call in self.calls.values():
            raw = "".join(call["args"]) or "{}"
            try:
                arguments = json.loads(raw)
            except ValueError:
                arguments = {"_raw": raw}  # kept, for the client to see what came
            out.append({"function": {"name": call.get("name", ""), "arguments": arguments}})
        return out

    def calls_line(self) -> dict[str, Any] | None:
        """Ollama sends tool calls whole, in a line before the `done` one."""
        if not self.calls:
            return None
        line = self.line("")
        line["message"]["tool_calls"] = self.tool_calls()
        return line

    def final(self, *, whole: bool = False) -> dict[str, Any]:
        """The `done` line; `whole`: the one-object answer (`stream: false`), text included."""
        end = time.perf_counter_ns()
        turn = self.turn or self.started
        first = self.first or end
        prompt_ns = int(float(self.timings.get("prompt_ms", 0)) * 1e6) or first - turn
        eval_ns = int(float(self.timings.get("predicted_ms", 0)) * 1e6) or end - first
        load_ns = 0 if self.resident else max(0, first - turn - prompt_ns)
        line = self.line("".join(self.text) if whole else "")
        if whole and self.calls and self.kind == "chat":
            line["message"]["tool_calls"] = self.tool_calls()
        line |= {
            "done": True,
            "done_reason": self.done_reason,
            "total_duration": end - self.started,
            "load_duration": load_ns,
            "prompt_eval_count": self.prompt_tokens or int(self.timings.get("prompt_n") or 0),
            "prompt_eval_duration": prompt_ns,
            "eval_count": self.completion_tokens or int(self.timings.get("predicted_n") or 0),
            "eval_duration": eval_ns,
        }
        return line
