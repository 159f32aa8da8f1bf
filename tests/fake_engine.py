"""A scriptable engine for fast unit tests of our own logic (never used to serve users).

`enqueue("Hello", "world")` makes the next generation answer those pieces, one chunk each;
`enqueue(EngineUnavailable(...))` makes it fail there. Unscripted generations echo the last
user message. `delay` paces chunks so tests can disconnect mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from iaforall.core.errors import EngineUnavailable, IAForAllError
from iaforall.core.events import Chunk
from iaforall.core.types import ChatRequest, GenerationRequest, ModelId, Usage
from iaforall.engines.protocol import BuiltinPrompt, Capabilities, EngineState

Script = list[str | IAForAllError]


class FakeEngine:
    def __init__(self, model: ModelId, capabilities: Capabilities, *, delay: float = 0.0):
        self.model = model
        self.capabilities = capabilities
        self.delay = delay
        self.builtin = BuiltinPrompt(None, False)  # a test may give it a template's prompt
        self.scripts: deque[Script] = deque()
        self.requests: list[GenerationRequest] = []
        self.active = 0
        self.starts = 0
        self.cancelled = 0
        self.can_pause = False  # pausable(): preemption tests turn it on
        self.resumed: list[int] = []  # chunks already sent, at each resume
        self._scripts: dict[int, Script] = {}  # each request's script, for its resumes
        self._state = EngineState.STOPPED

    @property
    def state(self) -> EngineState:
        return self._state

    def enqueue(self, *pieces: str | IAForAllError) -> None:
        self.scripts.append(list(pieces))

    def crash(self) -> None:
        self._state = EngineState.CRASHED

    async def start(self) -> None:
        self.starts += 1
        self._state = EngineState.READY

    def _script(self, request: GenerationRequest) -> Script:
        if self.scripts:
            return self.scripts.popleft()
        if isinstance(request, ChatRequest):
            return [str(request.messages[-1].get("content", ""))]
        return [request.prompt]

    def pausable(self, request: GenerationRequest) -> bool:
        return self.can_pause

    def resume(
        self, request: GenerationRequest, sent: Sequence[Chunk]
    ) -> AsyncGenerator[Chunk, None]:
        """The rest of the request's script, after the pieces already sent."""
        done = sum(1 for c in sent if c.delta.text)
        self.resumed.append(done)
        created = json.loads(sent[0].data)["created"]
        return self._run(request, self._scripts[id(request)][done:], created, done)

    def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        script = self._scripts[id(request)] = self._script(request)
        return self._run(request, script, int(time.time()), 0)

    async def _run(
        self, request: GenerationRequest, script: Script, created: int, n: int
    ) -> AsyncGenerator[Chunk, None]:
        if self._state is not EngineState.READY:
            raise EngineUnavailable(f"{self.model} is not running")
        self.requests.append(request)
        self.active += 1
        finished = False
        try:
            for piece in script:
                if isinstance(piece, IAForAllError):
                    raise piece
                if self.delay:
                    await asyncio.sleep(self.delay)
                n += 1
                yield Chunk(_chunk(self.model, created, {"delta": {"content": piece}}))
            yield Chunk(_chunk(self.model, created, {"delta": {}, "finish_reason": "stop"}))
            usage = Usage(prompt_tokens=1, completion_tokens=n)
            yield Chunk(_usage_chunk(self.model, created, usage), usage, usage_only=True)
            finished = True
        finally:
            self.active -= 1
            if not finished:
                self.cancelled += 1

    async def generate(self, request: GenerationRequest) -> dict[str, Any]:
        text, usage = [], Usage(0, 0)
        async for chunk in self.stream(request):
            if chunk.usage:
                usage = chunk.usage
            else:
                choice = json.loads(chunk.data)["choices"][0]
                text.append(choice["delta"].get("content", ""))
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(text)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
        }

    async def render_prompt(self, request: ChatRequest) -> str:
        messages = list(request.messages)
        if self.builtin.used and messages and messages[0].get("role") != "system":
            messages.insert(0, {"role": "system", "content": self.builtin.text})  # as templates do
        return "".join(f"<{m['role']}>{m.get('content', '')}\n" for m in messages)

    async def builtin_prompt(self) -> BuiltinPrompt:
        return self.builtin

    async def count_tokens(self, text: str) -> int:
        """One token a word: a stand-in for a tokenizer."""
        return len(text.split())

    async def stats(self) -> dict[str, Any]:
        return {"pid": None, "rss_bytes": None, "busy_slots": self.active}

    async def close(self) -> None:
        self._state = EngineState.STOPPED


def _chunk(model: str, created: int, choice: dict[str, Any]) -> bytes:
    return _compact(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "finish_reason": None, **choice}],
        }
    )


def _usage_chunk(model: str, created: int, usage: Usage) -> bytes:
    return _compact(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
        }
    )


def _compact(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()  # as llama.cpp writes it
