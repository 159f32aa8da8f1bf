"""Core requests -> the JSON bodies llama.cpp's server takes (an OpenAI dialect)."""

from __future__ import annotations

from typing import Any

from iaforall.core.types import ChatRequest, CompletionRequest, GenerationRequest, Sampling
from iaforall.engines.llamacpp.toolcalls import forced_call_format

EMPTY_SYSTEM: dict[str, Any] = {"role": "system", "content": ""}


def _sampling(s: Sampling) -> dict[str, Any]:
    body: dict[str, Any] = {
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        "seed": s.seed,
        "presence_penalty": s.presence_penalty,
        "frequency_penalty": s.frequency_penalty,
        "top_k": s.top_k,
        "min_p": s.min_p,
        "repeat_penalty": s.repeat_penalty,
    }
    body = {k: v for k, v in body.items() if v is not None}
    if s.stop:
        body["stop"] = list(s.stop)
    if s.logprobs:
        body["logprobs"] = True
        if s.top_logprobs is not None:
            body["top_logprobs"] = s.top_logprobs
    return body


def chat_messages(request: ChatRequest, *, template_default_system: bool) -> list[dict[str, Any]]:
    """The messages as given, plus an empty system message when there is none.

    Chat templates insert a hidden identity prompt when no system message is present
    ("You are Qwen, created by Alibaba Cloud..."); an explicit empty one keeps the prompt
    exactly what the user sent. `template_default_system` lets an operator opt back in.
    """
    messages = list(request.messages)
    has_system = bool(messages) and messages[0].get("role") == "system"
    if not has_system and not template_default_system:
        messages.insert(0, EMPTY_SYSTEM)
    return messages


def chat_body(request: ChatRequest, *, template_default_system: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": chat_messages(request, template_default_system=template_default_system),
        **_sampling(request.sampling),
    }
    if request.tools:
        body["tools"] = list(request.tools)
    if request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.response_format is not None:
        body["response_format"] = request.response_format
    forced = forced_call_format(request)
    if forced is not None:
        # The schema forces the call; llama.cpp's own "required" grammar would fight it.
        body["response_format"] = forced
        body["tool_choice"] = "auto"
    return body


def completion_body(request: CompletionRequest) -> dict[str, Any]:
    return {"prompt": request.prompt, **_sampling(request.sampling)}


def request_path_and_body(
    request: GenerationRequest, *, stream: bool, template_default_system: bool
) -> tuple[str, dict[str, Any]]:
    if isinstance(request, ChatRequest):
        path = "/v1/chat/completions"
        body = chat_body(request, template_default_system=template_default_system)
    else:
        path = "/v1/completions"
        body = completion_body(request)
    if stream:
        # Always ask for usage: the gateway accounts tokens from this last chunk and forwards
        # it only to clients that asked for it.
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return path, body
