"""The embeddings service without HTTP: the encoder's line is bounded, long requests go batch by
batch, and the work never blocks the event loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from iaforall.core.errors import InvalidRequest, ServerBusy
from iaforall.core.types import UserId
from iaforall.embeddings import Embeddings, normalize_inputs
from iaforall.embeddings import service as embedding_service
from iaforall.models.store import ModelStore
from iaforall.scheduling.loop import Scheduler
from iaforall.settings import EmbeddingSettings, Settings, StoreSettings


def service(home: Path, queue: int) -> Embeddings:
    settings = Settings(
        store=StoreSettings(home=home, install_missing=False),
        embeddings=EmbeddingSettings(embedding_queue=queue),
    )
    scheduler = Scheduler(slots_for=lambda model: 2, max_queue=8, queue_timeout=30)
    return Embeddings(settings, ModelStore(home, install_missing=False), scheduler)


async def test_the_line_is_bounded(tmp_path: Path) -> None:
    embeddings = service(tmp_path, queue=1)
    texts = [f"Sentence number {i} about the weather in Brest." for i in range(40)]
    results = await asyncio.gather(
        *(embeddings.embed(None, texts, user=None) for _ in range(5)), return_exceptions=True
    )
    busy = [r for r in results if isinstance(r, ServerBusy)]
    done = [r for r in results if not isinstance(r, BaseException)]
    assert len(done) == 2 and len(busy) == 3  # one computing, one waiting, the rest refused
    assert all(d.vectors.shape == (40, 512) for d in done)
    assert embeddings.turn.in_line == 0
    await embeddings.close()


async def test_batches_take_turns_and_the_loop_stays_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedding_service, "BATCH_CHARS", 400)  # ~8 sentences a batch
    embeddings = service(tmp_path, queue=4)
    texts = [f"Sentence number {i} about the weather in Brest." for i in range(120)]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    clock = asyncio.create_task(ticker())
    started = time.monotonic()
    user = UserId("someone")
    long, short = await asyncio.gather(
        embeddings.embed(None, texts, user=user),
        embeddings.embed(None, ["Just one."], user=UserId("other")),
    )
    elapsed = time.monotonic() - started
    clock.cancel()
    assert long.vectors.shape == (120, 512) and short.vectors.shape == (1, 512)
    assert long.prompt_tokens > short.prompt_tokens > 0
    # The loop kept ticking while the encoder worked in its thread.
    assert ticks >= elapsed / 0.005 * 0.3
    # Each batch is the same as encoding its texts on their own.
    alone = await embeddings.embed(None, texts[:3], user=None)
    assert np.allclose(long.vectors[:3], alone.vectors, atol=1e-5)
    await embeddings.close()


def test_inputs_are_normalised() -> None:
    assert normalize_inputs("hi") == ["hi"]
    assert normalize_inputs(["a", "b"]) == ["a", "b"]
    assert normalize_inputs([1, 2, 3]) == [[1, 2, 3]]
    assert normalize_inputs([[1, 2], [3]]) == [[1, 2], [3]]
    for bad in ([], None, 3, [True, 1], [[1], "a"], [[]], [-1], {"a": 1}):
        with pytest.raises(InvalidRequest):
            normalize_inputs(bad)


@pytest.mark.parametrize(("cores", "given"), [(1, 1), (2, 2)])
async def test_the_encoder_runs_on_the_threads_the_budget_gives(
    tmp_path: Path, cores: int, given: int
) -> None:
    """The encoder's jobs (two threads, or one) are sized by the CPU budget: on one core its
    BLAS products are limited to one thread, on two to both."""
    settings = Settings(
        store=StoreSettings(home=tmp_path, install_missing=False),
        embeddings=EmbeddingSettings(embedding_threads=2),
    )
    scheduler = Scheduler(
        slots_for=lambda model: 1,
        max_queue=8,
        queue_timeout=30,
        cpu_cores=cores,
        threads_for=lambda model: embeddings.sentence_encoder.capabilities.ways(),
    )
    embeddings = Embeddings(settings, ModelStore(tmp_path, install_missing=False), scheduler)
    embeddings.sentence_encoder.load()
    backend = embeddings.sentence_encoder._use._model
    limits: list[object] = []
    limit = backend._threadpool  # threadpoolctl's, which sets the BLAS threads of each call

    def recorded(**options: object) -> object:
        limits.append(options["limits"])
        return limit(**options)

    backend._threadpool = recorded
    done = await embeddings.embed(None, ["Il pleut sur Brest.", "Rain in Brest."], user=UserId("u"))
    assert done.vectors.shape == (2, 512)
    assert limits == [given]
    await embeddings.close()
