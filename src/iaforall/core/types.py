"""Frozen request types shared by every API surface, the scheduler and the engines.

The fields follow the OpenAI chat shape because llama.cpp, our engine, speaks it natively;
other surfaces (Ollama, the web app) translate into these types in their adapters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NewType

UserId = NewType("UserId", str)
ModelId = NewType("ModelId", str)
# What the store keeps, by id (plain strings at run time: new_id()'s hex, or as a client sent
# it before the store has found it); typed so that one cannot be passed for another.
ConversationId = NewType("ConversationId", str)
KnowledgeBaseId = NewType("KnowledgeBaseId", str)
DocumentId = NewType("DocumentId", str)

LOCAL_USER = UserId("local")

PersonRole = Literal["admin", "member"]
ROLES: tuple[PersonRole, ...] = ("admin", "member")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user with a role. Without accounts, the local user, an admin."""

    user: UserId
    name: str
    role: PersonRole

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


LOCAL_PRINCIPAL = Principal(LOCAL_USER, "local", "admin")

Role = Literal["system", "developer", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Sampling:
    """Generation settings; None means the engine's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    top_k: int | None = None  # the samplers below are llama.cpp's (Ollama's `options`)
    min_p: float | None = None
    repeat_penalty: float | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat generation. `messages`, `tools`, `response_format` keep the OpenAI JSON form."""

    model: ModelId
    messages: tuple[dict[str, Any], ...]
    user: UserId = LOCAL_USER
    weight: float = 1.0  # the user's share when the engines are saturated (fair scheduling)
    sampling: Sampling = field(default_factory=Sampling)
    stream: bool = False
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One raw-text completion."""

    model: ModelId
    prompt: str
    user: UserId = LOCAL_USER
    weight: float = 1.0  # the user's share when the engines are saturated (fair scheduling)
    sampling: Sampling = field(default_factory=Sampling)
    stream: bool = False


GenerationRequest = ChatRequest | CompletionRequest


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
