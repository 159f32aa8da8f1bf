"""What a dialect asks the pipeline: the core request and what to do around it."""

from __future__ import annotations

from dataclasses import dataclass

from iaforall.core.types import DocumentId, GenerationRequest, KnowledgeBaseId
from iaforall.policy.gate import RequestKind


@dataclass(frozen=True, slots=True)
class KnowledgeAsk:
    """Answer from these knowledge bases and single files: their `k` best passages for the
    last user message go to the model, numbered, and come back as citations."""

    bases: tuple[KnowledgeBaseId, ...] = ()
    files: tuple[DocumentId, ...] = ()
    k: int = 5


@dataclass(frozen=True, slots=True)
class Question:
    generation: GenerationRequest  # its model as the client named it: resolved once, here
    kind: RequestKind = "chat"  # for the rules and the audit log
    language: str | None = None  # the rules' messages in this language, when they have it
    knowledge: KnowledgeAsk | None = None
    # Ollama's keep_alive (seconds or "5m"; also our `iaforall.keep_alive`), set on the model
    # after the answer: None leaves the model's as it is, "default" resets it (Ollama's way:
    # a request that says nothing gives the model the server's default).
    keep_alive: float | str | None = None
    return_prompt: bool = False  # also render the exact prompt the model is given
    # Ollama generates until the context is full when asked for more tokens than it holds
    # (where the OpenAI dialects refuse): a longer max_tokens is lowered to the context.
    fill_context: bool = False
    # A request carries at most IAFORALL_IMAGE_MAX_COUNT images; a stored conversation, whose
    # images were checked one message at a time, does not count them.
    count_images: bool = True
