"""POST /v1/embeddings in-process (the real built-in encoder, a fake chat engine): OpenAI's
shape, meaning across languages, limits and bad input."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from iaforall.app import create_app
from iaforall.core.types import ModelId
from iaforall.embeddings import encoder
from iaforall.engines.pool import ModelEntry
from iaforall.engines.protocol import Capabilities, Engine
from iaforall.settings import EmbeddingSettings
from tests.conftest import fake_settings, served, stock_store
from tests.fake_engine import FakeEngine

EN = "The cat is sleeping on the warm windowsill."
FR = "Le chat dort sur le rebord chaud de la fenêtre."
OTHER = "Interest rates rose sharply in the third quarter."


def _fake(entry: ModelEntry, capabilities: Capabilities) -> Engine:
    return FakeEngine(ModelId(entry.name), capabilities)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    stock_store(tmp_path)
    # A wait long enough for a loaded machine: the turn-taking test's second request waits
    # for a big one, which takes ~0.3 s alone and seconds when other work shares the cores.
    settings = fake_settings(tmp_path, max_queue=4, queue_timeout=60)
    settings.embeddings = EmbeddingSettings(
        embedding_max_inputs=20,
        embedding_max_input_chars=3000,
        embedding_max_chars=10_000,
        embedding_queue=1,
    )
    app = create_app(settings, factory=_fake)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        yield http


async def embed(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await client.post("/v1/embeddings", json={"model": encoder.NAME, **body})


async def test_openai_shape_and_usage(client: httpx.AsyncClient) -> None:
    response = await embed(client, input=[EN, FR], user="someone")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and body["model"] == encoder.NAME
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert all(d["object"] == "embedding" and len(d["embedding"]) == 512 for d in body["data"])
    vectors = np.array([d["embedding"] for d in body["data"]])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    usage = body["usage"]
    assert usage["prompt_tokens"] > 10 and usage["total_tokens"] == usage["prompt_tokens"]


async def test_a_sentence_is_closer_to_its_translation(client: httpx.AsyncClient) -> None:
    response = await embed(client, input=[EN, FR, OTHER])
    e, f, o = (np.array(d["embedding"]) for d in response.json()["data"])
    assert float(e @ f) > 0.6 > 0.2 > float(e @ o)
    assert float(e @ f) > float(f @ o) + 0.4


async def test_base64_is_the_same_vector(client: httpx.AsyncClient) -> None:
    floats = (await embed(client, input=EN)).json()["data"][0]["embedding"]
    encoded = (await embed(client, input=EN, encoding_format="base64")).json()
    raw = np.frombuffer(base64.b64decode(encoded["data"][0]["embedding"]), dtype="<f4")
    assert raw.shape == (512,) and np.allclose(raw, floats, atol=1e-7)


async def test_default_model_aliases_and_dimensions(client: httpx.AsyncClient) -> None:
    plain = await client.post("/v1/embeddings", json={"input": EN})
    assert plain.status_code == 200 and plain.json()["model"] == encoder.NAME
    alias = await embed(client, input=EN, model="text-embedding-3-small", dimensions=512)
    assert alias.status_code == 200 and alias.json()["model"] == encoder.NAME
    shorter = await embed(client, input=EN, dimensions=256)
    assert shorter.status_code == 400
    assert shorter.json()["error"]["param"] == "dimensions"
    assert "512" in shorter.json()["error"]["message"]


async def test_listed_by_models(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/v1/models")).json()["data"]
    assert encoder.NAME in [m["id"] for m in listed]
    one = await client.get(f"/v1/models/{encoder.NAME}")
    assert one.status_code == 200 and one.json()["id"] == encoder.NAME


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"input": ""}, 400, "empty"),
        ({"input": []}, 400, "non-empty"),
        ({"input": [EN, ""]}, 400, "input[1]"),
        ({"input": [EN, 3]}, 400, "not a mix"),
        ({"input": {"text": EN}}, 400, "string"),
        ({"input": [[1, 2, 3]]}, 400, "token ids"),
        ({"input": [1, 2, 3]}, 400, "token ids"),
        ({"input": EN, "encoding_format": "int8"}, 400, "encoding_format"),
        ({"input": EN, "dimensions": 0}, 400, "dimensions"),
        ({"input": EN, "model": "no-such-model"}, 404, "no-such-model"),
        ({"model": encoder.NAME}, 400, "input"),
        ({"input": ["x"] * 21}, 400, "at most 20"),
        ({"input": "word " * 700}, 400, "3000"),
        ({"input": ["word " * 500] * 5}, 413, "10000"),
    ],
)
async def test_bad_input_is_refused_clearly(
    client: httpx.AsyncClient, body: dict[str, object], status: int, words: str
) -> None:
    response = await client.post("/v1/embeddings", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"] or words == error.get("param"), error


async def test_a_body_that_is_not_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/embeddings", content=b"{not json")
    assert response.status_code == 400


async def test_requests_take_turns_and_the_queue_is_bounded(client: httpx.AsyncClient) -> None:
    # A big request holds the encoder batch after batch; one more may wait (queue 1)...
    big = [f"{EN} {i} " * 20 for i in range(10)]  # ~9,500 characters: ~0.3 s of encoding
    answers = await asyncio.gather(*(embed(client, input=big) for _ in range(6)))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) >= 2, codes
    assert set(codes) == {200, 429}
    busy = [a for a in answers if a.status_code == 429]
    assert all(a.headers.get("retry-after") for a in busy)
    # ...and the server is still responsive meanwhile and after.
    assert (await embed(client, input=EN)).status_code == 200


async def test_embeddings_count_against_the_tokens_per_day(tmp_path: Path) -> None:
    """The encoder is a runtime like the others: its jobs pass the person's quotas, on both
    dialects, and what they read is recorded."""
    stock_store(tmp_path)
    settings = fake_settings(tmp_path, max_queue=4, queue_timeout=5)
    settings.people.admin_tokens_per_day = 10  # no accounts: the local person is an admin
    app = create_app(settings, factory=_fake)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        first = await embed(http, input=[EN, FR, OTHER])
        assert first.status_code == 200 and first.json()["usage"]["prompt_tokens"] > 10
        for refused in (
            await embed(http, input=EN),
            await http.post("/api/embed", json={"model": encoder.NAME, "input": EN}),
        ):
            assert refused.status_code == 429, refused.text
            assert "tokens per day" in refused.text
