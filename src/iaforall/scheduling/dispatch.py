"""The door from the API to the engines: validate, wait for a slot, run, account.

The API adapters call only this; it never knows which API a request came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from iaforall.core.errors import ContextLengthExceeded, IAForAllError, RequestTimeout
from iaforall.core.types import ChatRequest, GenerationRequest, ModelId, Usage
from iaforall.engines.pool import EnginePool
from iaforall.engines.protocol import Capabilities, Chunk
from iaforall.observability.metrics import Metrics
from iaforall.scheduling.loop import Scheduler


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

    def check(self, request: GenerationRequest) -> tuple[ModelId, Capabilities]:
        """Refuse what cannot succeed before it takes a place in line."""
        model, caps = self.pool.resolve(request.model)
        max_tokens = request.sampling.max_tokens
        if max_tokens is not None and max_tokens > caps.context_length:
            raise ContextLengthExceeded(
                f"max_tokens is {max_tokens} but '{model}' holds {caps.context_length} tokens "
                "in its context here (prompt included). Ask for fewer tokens.",
                param="max_tokens",
            )
        return model, caps

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        model, _ = self.check(request)
        started = time.monotonic()
        with self._counted(model, request):
            async with (
                self._admitted(model, request),
                self.pool.use(model) as engine,
                contextlib.aclosing(engine.stream(request)) as chunks,  # closing stops the engine
            ):
                first = True
                async for chunk in self._before_deadline(chunks):
                    if first:
                        self.metrics.first_token.labels(model).observe(time.monotonic() - started)
                        first = False
                    if chunk.usage is not None:
                        self._account(model, chunk.usage)
                    yield chunk
            self.metrics.latency.labels(model).observe(time.monotonic() - started)

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

    async def generate(self, request: GenerationRequest) -> dict[str, Any]:
        model, _ = self.check(request)
        started = time.monotonic()
        with self._counted(model, request):
            async with self._admitted(model, request), self.pool.use(model) as engine:
                try:
                    async with asyncio.timeout(self._request_timeout):
                        response = await engine.generate(request)
                except TimeoutError:
                    raise self._timed_out() from None
        usage = response.get("usage") or {}
        self._account(
            model,
            Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
        )
        self.metrics.latency.labels(model).observe(time.monotonic() - started)
        return response

    async def render_prompt(self, request: ChatRequest) -> str:
        """The exact prompt text; loads the model but takes no generation slot."""
        model, _ = self.check(request)
        async with self.pool.use(model) as engine:
            return await engine.render_prompt(request)

    @asynccontextmanager
    async def _admitted(self, model: ModelId, request: GenerationRequest) -> AsyncIterator[None]:
        waited = time.monotonic()
        async with self.scheduler.slot(model, request.user):
            self.metrics.queue_wait.labels(model).observe(time.monotonic() - waited)
            yield

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
