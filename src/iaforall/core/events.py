"""What an answer is made of on its way out, whichever API asked for it.

The engine streams `Chunk`s: one JSON object each in the OpenAI chunk format, exactly as
llama.cpp emits it. The OpenAI dialect relays those bytes untouched (on a 2-core machine every
microsecond spent per token in the gateway is taken from the engine); every other reader (the
rules, the Ollama, Responses, Anthropic and web dialects) reads the chunk's `delta`, parsed once
per chunk however many of them read it. Around the chunks, the pipeline says where the request
stands in line (`QueueUpdate`), what the published rules decided (`Decided`) and, once streaming
has started, that the answer failed (`Failed`): errors before the first event are raised instead,
so they keep their HTTP status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from iaforall.core.errors import IAForAllError
from iaforall.core.types import Usage


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call: the first piece of a call has its id and name, the
    following ones more of its JSON arguments."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class Delta:
    """What one chunk adds to the answer."""

    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: str | None = None
    timings: dict[str, Any] | None = None  # llama.cpp's prompt and generation milliseconds


def parse_delta(data: bytes) -> Delta:
    chunk = json.loads(data)
    timings = chunk.get("timings")
    choices = chunk.get("choices") or [{}]
    choice = choices[0]
    delta = choice.get("delta") or {}
    calls = tuple(
        ToolCallDelta(
            index=int(call.get("index", i)),
            id=call.get("id") or None,
            name=(call.get("function") or {}).get("name") or None,
            arguments=str((call.get("function") or {}).get("arguments") or ""),
        )
        for i, call in enumerate(delta.get("tool_calls") or ())
    )
    return Delta(
        text=str(delta.get("content") or choice.get("text") or ""),
        tool_calls=calls,
        finish_reason=choice.get("finish_reason"),
        timings=timings if isinstance(timings, dict) else None,
    )


@dataclass(frozen=True, slots=True)
class Chunk:
    data: bytes  # one OpenAI-format chunk, as the engine sent it
    usage: Usage | None = None  # set on the chunk that carries the usage (the last one)
    usage_only: bool = False  # that chunk has no choices: forwarded only when asked for
    _delta: Delta | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def delta(self) -> Delta:
        """The chunk's content, parsed on first use and kept."""
        if self._delta is None:
            object.__setattr__(self, "_delta", parse_delta(self.data))  # a cache, not a change
        assert self._delta is not None
        return self._delta


@dataclass(frozen=True, slots=True)
class QueueUpdate:
    """Where a request stands in line: 0 = its turn (or served at once); n = n-th in line,
    with about `wait_s` seconds to go. Each API shows it in its own way. `paused`: the answer
    had started, and was paused to give someone else a turn (it resumes where it stopped)."""

    position: int
    wait_s: float
    paused: bool = False


@dataclass(frozen=True, slots=True)
class Decided:
    """The published rules' decisions (in their public form) on the request (`input`) or on
    the whole answer (`output`, sent just before the answer's last text chunk). Each dialect
    shows them next to the text that follows, never as a hidden change."""

    stage: Literal["input", "output"]
    decisions: tuple[dict[str, Any], ...]

    def field(self) -> dict[str, Any]:
        """The `iaforall` field that carries them."""
        return {"decisions": list(self.decisions)}


@dataclass(frozen=True, slots=True)
class Failed:
    """The answer stopped with this error after streaming had started (the last event)."""

    error: IAForAllError


Event = QueueUpdate | Chunk | Decided | Failed
