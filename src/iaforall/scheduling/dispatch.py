"""The door from the answer pipeline to the engines: validate, wait for a slot, run, account.

The pipeline (`iaforall.answering`) calls `check` once per request, which resolves the model
name, and gives the other methods the checked request: they never resolve a name again. It
never knows which API a request came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import replace
from typing import Any, TypeVar

from iaforall.core.errors import ContextLengthExceeded, IAForAllError, RequestTimeout
from iaforall.core.events import Chunk, QueueUpdate
from iaforall.core.types import (
    ChatRequest,
    CompletionRequest,
    GenerationRequest,
    ModelId,
    Usage,
)
from iaforall.engines.llamacpp.assemble import assemble
from iaforall.engines.pool import EnginePool
from iaforall.engines.protocol import BuiltinPrompt, Capabilities, Engine
from iaforall.observability.metrics import Metrics
from iaforall.scheduling.loop import Scheduler, Ticket
from iaforall.scheduling.policy import DEFAULT_MAX_TOKENS, token_cost

R = TypeVar("R", bound=GenerationRequest)

_CHARS_PER_TOKEN = 4  # a rough prompt size before the engine counts it


def prompt_estimate(request: GenerationRequest) -> int:
    """About how many tokens the prompt holds (text length / 4), before the engine counts."""
    if isinstance(request, CompletionRequest):
        chars = len(request.prompt)
    else:
        chars = sum(len(str(m.get("content") or "")) for m in request.messages)
    return chars // _CHARS_PER_TOKEN + 1


def estimate_cost(request: GenerationRequest) -> float:
    """The work a request is charged when it starts (settled when it ends)."""
    max_tokens = request.sampling.max_tokens
    return token_cost(
        prompt_estimate(request), DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    )


class Dispatcher:
    def __init__(
        self,
        scheduler: Scheduler,
        pool: EnginePool,
        metrics: Metrics,
        *,
        request_timeout: float,
    ) -> None:
        self.scheduler = scheduler
        self.pool = pool
        self.metrics = metrics
        self._request_timeout = request_timeout

    def resolve(self, name: str) -> tuple[ModelId, Capabilities]:
        """A model's own name ("smollm2" -> "smollm2:135m") and capabilities; ModelNotFound."""
        return self.pool.resolve(name)

    def check(self, request: R, *, fill_context: bool = False) -> tuple[R, Capabilities]:
        """The request under its model's own name, refused (before it takes a place in line)
        if it cannot succeed; `fill_context`: more tokens than the context holds are lowered
        to the context (Ollama's way) instead."""
        model, caps = self.resolve(request.model)
        request = replace(request, model=model)
        max_tokens = request.sampling.max_tokens
        if max_tokens is not None and max_tokens > caps.context_length:
            if not fill_context:
                raise ContextLengthExceeded(
                    f"max_tokens is {max_tokens} but '{model}' holds {caps.context_length} "
                    "tokens in its context here (prompt included). Ask for fewer tokens.",
                    param="max_tokens",
                )
            sampling = replace(request.sampling, max_tokens=caps.context_length)
            request = replace(request, sampling=sampling)
        return request, caps

    async def stream_queued(
        self, request: GenerationRequest
    ) -> AsyncGenerator[QueueUpdate | Chunk, None]:
        """A `QueueUpdate` on admission (position 0: served at once), one each time the
        request moves up the line and one with position 0 when its turn comes, then the
        engine's chunks. Errors before the first item (busy) are raised there."""
        model = request.model
        started = time.monotonic()
        with self._counted(model, request):
            async with self._ticket(model, request) as ticket:
                async for status in ticket.wait():
                    yield QueueUpdate(status.position, status.wait_s)
                self.metrics.queue_wait.labels(model).observe(time.monotonic() - started)
                try:
                    async with self.pool.use(model, ticket.threads) as engine:
                        async for item in self._generation(engine, ticket, request, started):
                            yield item
                finally:
                    if ticket.used_tokens is None:  # stopped early: about one token a chunk
                        ticket.used(prompt_estimate(request), ticket.produced)
            self.metrics.latency.labels(model).observe(time.monotonic() - started)

    async def _generation(
        self, engine: Engine, ticket: Ticket, request: GenerationRequest, started: float
    ) -> AsyncGenerator[QueueUpdate | Chunk, None]:
        """The engine's chunks for a request holding its slot. If the scheduler asks it to
        pause (preemption), the engine is stopped after a token, the slot goes back, the
        ticket's new places in line come as `QueueUpdate(paused=True)`, and once its turn is
        back the engine resumes from the chunks already sent: the same answer, later."""
        model = request.model
        if self.scheduler.preempts and engine.pausable(request):
            self.scheduler.may_pause(ticket)
        sent: list[Chunk] = []
        while True:
            chunks = engine.resume(request, sent) if sent else engine.stream(request)
            async with contextlib.aclosing(chunks):  # closing it stops the engine
                async for chunk in self._before_deadline(chunks):
                    if ticket.produced == 0:
                        self.metrics.first_token.labels(model).observe(time.monotonic() - started)
                    ticket.produced += 1  # the line's estimates follow the progress
                    if chunk.usage is not None:
                        self._account(model, chunk.usage)
                        ticket.used(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    yield chunk
                    if ticket.produced == ticket.quantum_at:
                        self.scheduler.quantum_over(ticket)
                    if ticket.pausable:
                        sent.append(chunk)
                        if ticket.pause_asked and _between_tokens(chunk):
                            break
                else:
                    return
            self.scheduler.paused(ticket)
            async for status in ticket.wait():
                yield QueueUpdate(status.position, status.wait_s, paused=status.position != 0)

    async def _before_deadline(
        self, chunks: AsyncGenerator[Chunk, None]
    ) -> AsyncGenerator[Chunk, None]:
        # A comparison per chunk, not a timeout context per chunk: on 2 cores every
        # microsecond per token is taken from the engine. A stalled engine is caught by the
        # engine's own read timeout (the same length).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._request_timeout
        async for chunk in chunks:
            if loop.time() > deadline:
                raise self._timed_out()
            yield chunk

    def _timed_out(self) -> RequestTimeout:
        return RequestTimeout(
            f"The answer took longer than {self._request_timeout:.0f} s and was stopped."
        )

    async def generate(
        self,
        request: GenerationRequest,
        *,
        on_admission: Callable[[QueueUpdate], None] | None = None,
    ) -> dict[str, Any]:
        """The whole answer; `on_admission` is told the request's place in line on arrival."""
        model = request.model
        started = time.monotonic()
        with self._counted(model, request):
            async with self._ticket(model, request) as ticket:
                async for status in ticket.wait():
                    if on_admission is not None:
                        on_admission(QueueUpdate(status.position, status.wait_s))
                        on_admission = None
                self.metrics.queue_wait.labels(model).observe(time.monotonic() - started)
                async with self.pool.use(model, ticket.threads) as engine:
                    try:
                        async with asyncio.timeout(self._request_timeout):
                            if self.scheduler.preempts and engine.pausable(request):
                                # streamed, so that it can pause
                                items = self._generation(engine, ticket, request, started)
                                async with contextlib.aclosing(items):
                                    chunks = [i async for i in items if isinstance(i, Chunk)]
                                response = assemble([json.loads(c.data) for c in chunks])
                            else:
                                response = await engine.generate(request)
                    except TimeoutError:
                        raise self._timed_out() from None
                usage = response.get("usage") or {}
                used = Usage(
                    int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
                )
                ticket.used(used.prompt_tokens, used.completion_tokens)
        self._account(model, used)
        self.metrics.latency.labels(model).observe(time.monotonic() - started)
        return response

    async def render_prompt(self, request: ChatRequest) -> str:
        """The exact prompt text; loads the model but takes no generation slot."""
        async with self.pool.use(request.model) as engine:
            return await engine.render_prompt(request)

    async def builtin_prompt(self, model: ModelId) -> BuiltinPrompt:
        """The model's own system prompt and whether it is used; loads the model."""
        async with self.pool.use(model) as engine:
            return await engine.builtin_prompt()

    async def count_tokens(self, model: ModelId, text: str) -> int:
        """A rendered prompt's length in the model's own tokens; no generation slot."""
        async with self.pool.use(model) as engine:
            return await engine.count_tokens(text)

    def _ticket(
        self, model: ModelId, request: GenerationRequest
    ) -> AbstractAsyncContextManager[Ticket]:
        return self.scheduler.ticket(
            model, request.user, weight=request.weight, cost=estimate_cost(request)
        )

    @contextmanager
    def _counted(self, model: ModelId, request: GenerationRequest) -> Iterator[None]:
        kind = "chat" if isinstance(request, ChatRequest) else "completion"
        outcome = "ok"
        try:
            yield
        except IAForAllError as exc:
            outcome = exc.code
            raise
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"  # the client left
            raise
        finally:
            self.metrics.requests.labels(model, kind, outcome).inc()

    def refresh_gauges(self) -> None:
        """Queue gauges are read from the scheduler when scraped, so they never drift."""
        for model in self.pool.residents():
            self.metrics.queue_length.labels(model).set(self.scheduler.queued(model))
            self.metrics.running.labels(model).set(self.scheduler.running(model))

    def _account(self, model: ModelId, usage: Usage) -> None:
        self.metrics.tokens.labels(model, "prompt").inc(usage.prompt_tokens)
        self.metrics.tokens.labels(model, "completion").inc(usage.completion_tokens)


def _between_tokens(chunk: Chunk) -> bool:
    """A generation may pause after this chunk: a piece of text, not its end."""
    if chunk.usage_only or chunk.usage is not None:
        return False
    delta = chunk.delta
    return delta.finish_reason is None and not delta.tool_calls
