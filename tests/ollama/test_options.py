"""Ollama's `options` and `keep_alive` in our terms, down to the JSON llama.cpp is sent."""

from __future__ import annotations

import pytest

from iaforall.answering.keep_alive import keep_alive_seconds
from iaforall.api.ollama.options import options_sampling
from iaforall.core.errors import InvalidRequest
from iaforall.core.types import CompletionRequest, ModelId
from iaforall.engines.llamacpp.payload import completion_body


def test_samplers_reach_llamacpp() -> None:
    sampling, ignored = options_sampling(
        {"top_k": 20, "min_p": 0.05, "repeat_penalty": 1.15, "num_predict": -1, "stop": "\n"}
    )
    assert ignored == []
    body = completion_body(CompletionRequest(ModelId("m"), "p", sampling=sampling))
    assert body["top_k"] == 20 and body["min_p"] == 0.05 and body["repeat_penalty"] == 1.15
    assert "max_tokens" not in body and body["stop"] == ["\n"]  # -1: no limit
    plain = completion_body(CompletionRequest(ModelId("m"), "p"))
    assert {"top_k", "min_p", "repeat_penalty"}.isdisjoint(plain)  # the engine's defaults


def test_off_values_pass_and_others_are_refused() -> None:
    sampling, _ = options_sampling({"mirostat": 0, "typical_p": 1.0, "top_k": 0})
    assert sampling.top_k is None  # 0: no top-k, as in Ollama
    for bad in ({"mirostat": 1}, {"temperature": "hot"}, {"seed": 1.5}, {"stop": [1]}):
        with pytest.raises(InvalidRequest):
            options_sampling(bad)


@pytest.mark.parametrize(
    ("given", "seconds"),
    [(None, None), (0, 0.0), ("0", 0.0), ("5m", 300.0), ("1h", 3600.0), (-1, -1.0), ("30s", 30.0)],
)
def test_keep_alive(given: float | str | None, seconds: float | None) -> None:
    assert keep_alive_seconds(given) == seconds


def test_keep_alive_nonsense_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="keep_alive"):
        keep_alive_seconds("forever")
