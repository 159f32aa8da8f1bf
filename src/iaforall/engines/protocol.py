"""The small contract every engine keeps.

Streaming output is a sequence of `Chunk`s whose `data` is one JSON object in the OpenAI chunk
format (`chat.completion.chunk` or `text_completion`), exactly as llama.cpp emits it: the bytes
pass through the gateway untouched, because on a 2-core machine every microsecond spent per
token in the gateway is taken from the engine (see shared/MODELS.md). The one chunk that carries
usage is parsed once, by the engine, into `Chunk.usage`.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from iaforall.core.events import Chunk
from iaforall.core.types import ChatRequest, GenerationRequest, ModelId


class EngineState(enum.Enum):
    STOPPED = "stopped"
    LOADING = "loading"
    READY = "ready"
    CRASHED = "crashed"


@dataclass(frozen=True, slots=True)
class Capabilities:
    slots: int
    context_length: int
    tools: bool
    vision: bool = False  # a projector: image parts go to the model itself, not to OCR


@dataclass(frozen=True, slots=True)
class BuiltinPrompt:
    """The system prompt a model's chat template adds to a chat that has none (None: the
    template has none), and whether this server lets it (else it sends an empty one)."""

    text: str | None
    used: bool


class Engine(Protocol):
    model: ModelId
    capabilities: Capabilities

    @property
    def state(self) -> EngineState: ...

    async def start(self) -> None:
        """Load the model; raises EngineUnavailable when it cannot."""

    def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        """Generate, yielding chunks; the last one carries the usage."""

    async def generate(self, request: GenerationRequest) -> dict[str, Any]:
        """Generate the whole answer (OpenAI response object)."""

    def pausable(self, request: GenerationRequest) -> bool:
        """Whether `resume` continues this request exactly as `stream` would have."""

    def resume(
        self, request: GenerationRequest, sent: Sequence[Chunk]
    ) -> AsyncGenerator[Chunk, None]:
        """The rest of a generation stopped after the chunks `sent` (from `stream` and
        earlier resumes): the chunks `stream` would have sent next, the same ids, the usage
        of the whole answer (see scheduling/preempt.py)."""

    async def render_prompt(self, request: ChatRequest) -> str:
        """The exact text the model is given for this chat, template included."""

    async def count_tokens(self, text: str) -> int:
        """How many tokens a rendered prompt is, by the model's own tokenizer."""

    async def builtin_prompt(self) -> BuiltinPrompt:
        """The chat template's own system prompt, and whether it is used here."""

    async def stats(self) -> dict[str, Any]:
        """Resident memory, busy slots and the like, for `ps` and `/health`."""

    async def close(self) -> None:
        """Stop and free everything; safe to call twice."""
