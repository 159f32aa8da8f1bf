"""Embeddings from the real server through the official `openai` SDK, unchanged, and a GGUF
model's embeddings through llama.cpp at the engine boundary (the real smollm2:135m, whose
mean-pooled embeddings are poor but real)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import openai
import pytest

from iaforall.core.errors import ContextLengthExceeded, InvalidRequest
from iaforall.embeddings import encoder
from iaforall.embeddings.gguf import EmbeddingEngine, embedding_factory, shape_of
from iaforall.engines.protocol import Capabilities
from iaforall.models.store import ModelStore
from iaforall.settings import EngineSettings
from tests.real_server import SMOL, RealServer

EN = "The cat is sleeping on the warm windowsill."
FR = "Le chat dort sur le rebord chaud de la fenêtre."
OTHER = "Interest rates rose sharply in the third quarter."


@pytest.fixture
def client(server: RealServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)


def _floats(embedding: list[float] | str) -> list[float]:
    """Asked for base64, the SDK hands the string over as it came."""
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4").tolist()
    return embedding


def cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))


@pytest.mark.parametrize("encoding", ["float", "base64", None])
def test_the_sdk_unchanged(client: openai.OpenAI, encoding: str | None) -> None:
    # With no encoding_format the SDK itself asks for base64 and decodes it.
    options = {"encoding_format": encoding} if encoding else {}
    answer = client.embeddings.create(model=encoder.NAME, input=[EN, FR, OTHER], **options)  # type: ignore[arg-type]
    assert answer.object == "list" and answer.model == encoder.NAME
    vectors = [_floats(d.embedding) for d in answer.data]
    assert [len(v) for v in vectors] == [512, 512, 512]
    assert [d.index for d in answer.data] == [0, 1, 2]
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.4
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > 10


def test_the_sdk_reports_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model=encoder.NAME, input=EN, dimensions=128)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nothing-here", input=EN)


def test_a_gguf_model_through_the_server(client: openai.OpenAI, server: RealServer) -> None:
    answer = client.embeddings.create(model=SMOL, input=[EN, EN, OTHER], encoding_format="float")
    assert answer.model == SMOL
    vectors = [d.embedding for d in answer.data]
    assert [len(v) for v in vectors] == [576] * 3
    assert cosine(vectors[0], vectors[1]) > 0.999
    assert cosine(vectors[0], vectors[2]) < 0.99
    tokens = client.embeddings.create(model=SMOL, input=[[1, 2, 3], [4, 5]])
    assert [len(d.embedding) for d in tokens.data] == [576, 576]
    # Its chat worker goes on answering meanwhile: the embedding worker is another process.
    chat = client.chat.completions.create(
        model=SMOL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert chat.choices[0].message.content is not None


@pytest.fixture(scope="module")
async def engine(
    model_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EmbeddingEngine]:
    entry = ModelStore(model_home, install_missing=False).get(SMOL)
    assert entry is not None
    build = embedding_factory(
        EngineSettings(threads=2, parallel=1, context_length=256),
        tmp_path_factory.mktemp("logs"),
        read_timeout=60,
    )
    engine = build(entry, Capabilities(slots=1, context_length=256, tools=False))
    assert isinstance(engine, EmbeddingEngine)
    await engine.start()
    yield engine
    await engine.close()


async def test_engine_boundary_vectors(engine: EmbeddingEngine) -> None:
    assert "--embedding" in engine.worker_args()
    assert engine.worker_args()[-2:] == ["--pooling", "mean"]  # a chat model declares none
    assert shape_of(engine.path) == (576, None)
    vectors, tokens = await engine.embed([EN, FR, EN])
    assert vectors.shape == (3, 576) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert float(vectors[0] @ vectors[2]) > 0.999
    assert tokens > 10


async def test_engine_boundary_errors(engine: EmbeddingEngine) -> None:
    with pytest.raises(ContextLengthExceeded, match="longer"):
        await engine.embed(["word " * 400])  # more tokens than one batch of 256
    with pytest.raises(InvalidRequest, match="invalid tokens"):
        await engine.embed([[1, 2, 10_000_000]])
    vectors, _ = await engine.embed(["still fine"])
    assert vectors.shape == (1, 576)
