"""Embeddings for the API and for knowledge bases: which model, within which limits, in turn.

- `use:multilingual` (the default): the built-in encoder, in a thread, one batch at a time
  (a few may wait, then 429), so a long request never holds the encoder for long.
- any GGUF model in the store: its own llama.cpp worker in embedding mode (see `gguf.py`).

A request made on behalf of a user takes its turn among all the work, chat included (the
scheduler's fair shares and CPU budget, IAFORALL_CPU_CORES), and is charged the tokens it read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from iaforall.core.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServerBusy,
)
from iaforall.core.types import ModelId, UserId
from iaforall.embeddings import encoder
from iaforall.embeddings.gguf import EmbeddingEngine, Inputs, embedding_factory, shape_of
from iaforall.engines.pool import Catalog, EngineFactory, EnginePool
from iaforall.engines.runtime import Runtimes, RuntimeSpec
from iaforall.scheduling.loop import Scheduler
from iaforall.scheduling.policy import token_cost
from iaforall.settings import Settings

T = TypeVar("T")

# What OpenAI's clients name their embedding models: served by the built-in encoder.
ALIASES = {
    "text-embedding-3-small": encoder.NAME,
    "text-embedding-3-large": encoder.NAME,
    "text-embedding-ada-002": encoder.NAME,
}
BATCH_CHARS = 16_000  # one turn of the built-in encoder: ~0.2-0.5 s on 2 cores
GGUF_BATCH = 32  # inputs per call to a llama.cpp worker


def builtin_models() -> list[str]:
    """The built-in embedding models that are installed (listed by /v1/models)."""
    return [encoder.NAME] if encoder.installed() else []


@dataclass(frozen=True, slots=True)
class EmbeddingModel:
    name: str
    dimensions: int
    kind: Literal["builtin", "gguf"]
    context_length: int | None = None  # gguf: the most tokens one input may have

    @property
    def queue_name(self) -> ModelId:
        """Its name in the scheduler's line (a GGUF model's embedding worker is not its chat
        worker: both may run at once)."""
        return ModelId(self.name if self.kind == "builtin" else f"{self.name} (embeddings)")


@dataclass(frozen=True, slots=True)
class Embedded:
    model: str
    vectors: npt.NDArray[np.float32]  # one row per input, each of length 1
    prompt_tokens: int


class Turn:
    """The built-in encoder's line: requests in it (one computing, `queue` more waiting) take
    its batches one at a time, in arrival order; beyond, a 429 at once."""

    def __init__(self, queue: int) -> None:
        self.lock = asyncio.Lock()
        self.queue = queue
        self.in_line = 0

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        if self.in_line > self.queue:
            raise ServerBusy(
                "The server is computing other embeddings; try again shortly.", retry_after=2
            )
        self.in_line += 1
        try:
            yield
        finally:
            self.in_line -= 1

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        async with self.lock:
            return await asyncio.to_thread(work, *args)


def encoder_spec(settings: Settings) -> RuntimeSpec:
    """The built-in encoder as a runtime the registry makes on first use."""
    threads = settings.embeddings.embedding_threads or settings.engine.resolved_threads()
    return RuntimeSpec(
        ModelId(encoder.NAME),
        "embeddings",
        lambda: encoder.SentenceEncoder(threads),
        tuple(ALIASES),
    )


def normalize_inputs(raw: Any) -> Inputs:
    """OpenAI's `input`: a string, a list of strings, a token array, or a list of token arrays
    (as lists); anything else is a 400."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest(
            "'input' must be a non-empty string or a non-empty list of strings.", param="input"
        )
    if all(isinstance(x, str) for x in raw):
        return list(raw)
    if all(_is_tokens(x) for x in raw):
        return [list(raw)]
    if all(isinstance(x, list) and x and all(_is_tokens(t) for t in x) for x in raw):
        return [list(x) for x in raw]
    raise InvalidRequest(
        "'input' must be a string, a list of strings, a list of token ids, or a list of lists "
        "of token ids; not a mix.",
        param="input",
    )


def _is_tokens(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


class Embeddings:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        scheduler: Scheduler,
        *,
        factory: EngineFactory | None = None,
        runtimes: Runtimes | None = None,
    ) -> None:
        self.settings = settings.embeddings
        self.scheduler = scheduler
        self._catalog = catalog
        self._request_timeout = settings.scheduling.request_timeout
        engine = settings.engine
        # The built-in encoder is the app's runtime (made, and closed, by the pool's registry);
        # without one (a service used on its own), one of its own.
        self._owns_runtimes = runtimes is None
        self._runtimes = runtimes or Runtimes([encoder_spec(settings)])
        self.turn = Turn(self.settings.embedding_queue)
        self.pool = EnginePool(
            catalog,
            factory
            or embedding_factory(
                engine, settings.store.home / "logs", read_timeout=self._request_timeout
            ),
            slots=engine.parallel,
            context_length=engine.context_length,
            keep_alive=engine.keep_alive,
        )
        self._shapes: dict[tuple[Path, int], tuple[int, str | None]] = {}
        self._reaper: asyncio.Task[None] | None = None

    # -- which model ----------------------------------------------------------------------

    def resolve(self, name: str | None) -> EmbeddingModel:
        name = (name or "").strip() or self.settings.embedding_model
        name = ALIASES.get(name, name)
        if name == encoder.NAME:
            if not encoder.installed():
                raise ModelNotFound(name)
            return EmbeddingModel(name, encoder.DIMENSIONS, "builtin")
        entry = self._catalog.get(name)
        if entry is None:
            raise ModelNotFound(name)
        key = (entry.path, _size(entry.path))
        if key not in self._shapes:
            self._shapes[key] = shape_of(entry.path)
        _, capabilities = self.pool.resolve(entry.name)
        return EmbeddingModel(entry.name, self._shapes[key][0], "gguf", capabilities.context_length)

    # -- within limits --------------------------------------------------------------------

    def check(self, model: EmbeddingModel, inputs: Inputs) -> int:
        """Refuse what is too much before anything runs; returns the characters (or tokens)
        to read."""
        limits = self.settings
        if len(inputs) > limits.embedding_max_inputs:
            raise InvalidRequest(
                f"{len(inputs)} inputs were sent; at most {limits.embedding_max_inputs} are "
                "allowed in one request (IAFORALL_EMBEDDING_MAX_INPUTS).",
                param="input",
            )
        total = 0
        for i, item in enumerate(inputs):
            if isinstance(item, str):
                if not item:
                    raise InvalidRequest(f"'input[{i}]' is an empty string.", param="input")
                if len(item) > limits.embedding_max_input_chars:
                    raise ContextLengthExceeded(
                        f"'input[{i}]' has {len(item)} characters; at most "
                        f"{limits.embedding_max_input_chars} are read at once "
                        "(IAFORALL_EMBEDDING_MAX_INPUT_CHARS). Split it into passages.",
                        param="input",
                    )
            else:
                if model.kind == "builtin":
                    raise InvalidRequest(
                        f"{model.name} reads text, not token ids: send the input as strings.",
                        param="input",
                    )
                if model.context_length and len(item) > model.context_length:
                    raise ContextLengthExceeded(
                        f"'input[{i}]' has {len(item)} tokens; {model.name} reads at most "
                        f"{model.context_length} at once here.",
                        param="input",
                    )
            total += len(item)
        if total > limits.embedding_max_chars:
            raise PayloadTooLarge(
                f"The inputs hold {total} characters together; at most "
                f"{limits.embedding_max_chars} are read in one request "
                "(IAFORALL_EMBEDDING_MAX_CHARS). Send them in several requests."
            )
        return total

    @staticmethod
    def check_dimensions(model: EmbeddingModel, dimensions: int | None) -> None:
        if dimensions is not None and dimensions != model.dimensions:
            raise InvalidRequest(
                f"{model.name} gives {model.dimensions}-dimension vectors and was not trained "
                f"to be shortened: 'dimensions' can only be {model.dimensions} (or left out).",
                param="dimensions",
            )

    # -- computing ------------------------------------------------------------------------

    async def embed(
        self,
        model_name: str | None,
        raw_inputs: Any,
        *,
        user: UserId | None,
        weight: float = 1.0,
    ) -> Embedded:
        """Vectors for the inputs. With a `user`, the request takes its turn in the scheduler
        and the user is charged its tokens; `user=None` is for the server's own small work
        (e.g. one question's vector), which only waits for the encoder."""
        model = self.resolve(model_name)
        inputs = normalize_inputs(raw_inputs)
        size = self.check(model, inputs)
        line = self.turn.admitted() if model.kind == "builtin" else contextlib.nullcontext()
        try:
            with line:
                async with (
                    asyncio.timeout(self._request_timeout),
                    self._slot(model, user, weight, size) as (threads, used),
                ):
                    result = await self._compute(model, inputs, threads)
                    used(result.prompt_tokens)
        except TimeoutError:
            raise RequestTimeout(
                f"The embeddings took longer than {self._request_timeout:.0f} s and were stopped."
            ) from None
        return result

    @contextlib.asynccontextmanager
    async def _slot(
        self, model: EmbeddingModel, user: UserId | None, weight: float, size: int
    ) -> AsyncIterator[tuple[int, Callable[[int], None]]]:
        """The threads the scheduler gave the job (0: its most), and how to charge it."""
        if user is None:
            yield 0, lambda tokens: None
            return
        # About 4 characters a token; the ticket is then charged what was really read.
        async with self.scheduler.slot(
            model.queue_name, user, weight=weight, cost=token_cost(size // 4 + 1, 0)
        ) as ticket:
            yield ticket.threads, lambda used: ticket.used(used, 0)

    async def _compute(self, model: EmbeddingModel, inputs: Inputs, threads: int = 0) -> Embedded:
        parts: list[npt.NDArray[np.float32]] = []
        tokens = 0
        if model.kind == "builtin":
            for batch in _batches_by_chars(inputs, BATCH_CHARS):
                vectors, used = await self.turn.run(self.sentence_encoder.encode, batch, threads)
                parts.append(vectors)
                tokens += used
        else:
            self._start_reaper()
            async with self.pool.use(model.name) as engine:
                assert isinstance(engine, EmbeddingEngine)
                for start in range(0, len(inputs), GGUF_BATCH):
                    vectors, used = await engine.embed(inputs[start : start + GGUF_BATCH])
                    parts.append(vectors)
                    tokens += used
        return Embedded(model.name, np.concatenate(parts), tokens)

    @property
    def sentence_encoder(self) -> encoder.SentenceEncoder:
        runtime = self._runtimes.get(encoder.NAME)
        assert isinstance(runtime, encoder.SentenceEncoder)
        return runtime

    def _start_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.create_task(self.pool.reap_forever())

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        await self.pool.close()
        if self._owns_runtimes:
            await self._runtimes.close()


def _batches_by_chars(inputs: Sequence[Any], budget: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    size = 0
    for item in inputs:
        if batch and size + len(item) > budget:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += len(item)
    if batch:
        yield batch


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
