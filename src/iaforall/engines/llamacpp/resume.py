"""Resuming a paused chat generation exactly where it stopped (scheduling/preempt.py).

A chat template cannot continue a half-written assistant message, so the resume is a raw
completion: the chat's rendered prompt, as token ids, followed by the ids of the tokens already
generated, with llama.cpp's prompt cache on (the slot, or the RAM cache of idle slots, still
holds that prefix: only the last token is evaluated again). Token ids, not text: text tokenized
again may split differently from what the model generated, and greedy decoding must go on from
the very same tokens. llama.cpp streams one chunk per token (a character cut between tokens
waits for its end), so each chunk's text, tokenized alone, gives back its token.

The completion's chunks are written back as the chat chunks the chat endpoint would have sent:
same id, created time, model and fingerprint, same key order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from iaforall.core.events import Chunk
from iaforall.core.types import ChatRequest, GenerationRequest, Usage

# Chat-only fields: the completion takes the prompt as ids instead.
_CHAT_ONLY = ("messages", "tools", "tool_choice", "parallel_tool_calls", "stream_options")


def pausable(request: GenerationRequest) -> bool:
    """Chats of plain text sampled without penalties: their resume is token for token what
    the generation would have been. Not tools, grammars or JSON schemas (the grammar's state
    is not resumed), images (their tokens are not text), log-probabilities, or repetition
    penalties (llama.cpp counts them over generated tokens only, which a resume turns into
    prompt tokens)."""
    if not isinstance(request, ChatRequest):
        return False
    s = request.sampling
    penalties = (s.presence_penalty, s.frequency_penalty)
    return (
        not request.tools
        and request.response_format is None
        and not s.logprobs
        and all(p in (None, 0.0) for p in penalties)
        and s.repeat_penalty in (None, 1.0)
        and all(isinstance(m.get("content"), str | None) for m in request.messages)
    )


@dataclass(frozen=True, slots=True)
class Sent:
    """What a paused generation had sent: its chat chunks' header and its text, token by
    token."""

    header: dict[str, Any]  # created, id, model, system_fingerprint
    pieces: tuple[str, ...]  # one per content chunk

    @classmethod
    def of(cls, chunks: Sequence[Chunk]) -> Sent:
        first = json.loads(chunks[0].data)
        header = {
            k: first[k] for k in ("created", "id", "model", "system_fingerprint") if k in first
        }
        pieces = tuple(c.delta.text for c in chunks if c.delta.text)
        return cls(header, pieces)

    def chunk(self, choice: dict[str, Any], **extra: Any) -> bytes:
        """A chat chunk in llama.cpp's own key order."""
        choices = [choice] if choice else []  # (the usage chunk has none)
        body = {"choices": choices, **self.header, "object": "chat.completion.chunk", **extra}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    def text(self, content: str) -> Chunk:
        return Chunk(self.chunk({"finish_reason": None, "index": 0, "delta": {"content": content}}))

    def end(self, finish_reason: str) -> Chunk:
        return Chunk(self.chunk({"finish_reason": finish_reason, "index": 0, "delta": {}}))

    def usage(self, usage: Usage, cached: int, timings: dict[str, Any] | None) -> Chunk:
        field = {
            "completion_tokens": usage.completion_tokens,
            "prompt_tokens": usage.prompt_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": cached},
        }
        extra: dict[str, Any] = {"usage": field}
        if timings is not None:
            extra["timings"] = timings
        return Chunk(self.chunk({}, **extra), usage, usage_only=True)


def completion_body(
    chat_body: dict[str, Any], prompt: list[int], generated: int
) -> dict[str, Any] | None:
    """The raw completion that continues `chat_body` (the chat's own body, streamed) after
    `generated` tokens; None when its max_tokens are already used."""
    body = {k: v for k, v in chat_body.items() if k not in _CHAT_ONLY}
    max_tokens = body.pop("max_tokens", None)
    if max_tokens is not None:
        if max_tokens - generated <= 0:
            return None
        body["n_predict"] = max_tokens - generated
    body["prompt"] = prompt
    body["cache_prompt"] = True
    body["stream"] = True
    return body


def finish_reason(last: dict[str, Any]) -> str:
    """The chat finish reason of a completion's last chunk."""
    return "length" if last.get("stop_type") == "limit" else "stop"
