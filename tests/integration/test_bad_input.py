"""Bad input gets a clear 4xx in the OpenAI error shape, never a 500, against the real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.real_server import SMOL, RealServer

OK_MESSAGES = [{"role": "user", "content": "hi"}]


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": SMOL, "messages": OK_MESSAGES, **fields}


CASES = [
    pytest.param(
        b'{"model": "smollm2:135m", "messages": [', 400, "invalid_json", None, id="malformed json"
    ),
    pytest.param(b"", 400, "invalid_value", None, id="empty body"),
    pytest.param(chat(temperature="hot"), 400, "invalid_value", "temperature", id="wrong type"),
    pytest.param(chat(temperature=7), 400, "invalid_value", "temperature", id="out of range"),
    pytest.param(
        chat(messages="hello"), 400, "invalid_value", "messages", id="messages not a list"
    ),
    pytest.param(
        chat(messages=[{"role": "robot", "content": "x"}]),
        400,
        "invalid_value",
        "messages.0.role",
        id="unknown role",
    ),
    pytest.param(
        {"messages": OK_MESSAGES}, 400, "missing_required_parameter", "model", id="no model"
    ),
    pytest.param(chat(model="nope:1b"), 404, "model_not_found", "model", id="unknown model"),
    pytest.param(chat(messages=[]), 400, "invalid_request", "messages", id="empty messages"),
    pytest.param(
        chat(max_tokens=100_000),
        400,
        "context_length_exceeded",
        "max_tokens",
        id="max_tokens beyond context",
    ),
    pytest.param(chat(max_tokens=0), 400, "invalid_value", "max_tokens", id="zero max_tokens"),
    pytest.param(chat(n=3), 400, "unsupported_parameter", "n", id="n > 1"),
    pytest.param(
        chat(functions=[{"name": "f"}]),
        400,
        "unsupported_parameter",
        "functions",
        id="legacy functions",
    ),
    pytest.param(
        chat(logit_bias={"1": 5}), 400, "unsupported_parameter", "logit_bias", id="logit_bias"
    ),
    pytest.param(
        chat(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "thing"}},
            }
        ),
        400,
        "invalid_json_schema",
        "response_format.json_schema.schema",
        id="invalid json schema",
    ),
    pytest.param(
        chat(response_format={"type": "json_schema"}),
        400,
        "invalid_request",
        "response_format.json_schema",
        id="json_schema missing",
    ),
    pytest.param(
        chat(
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}
            ]
        ),
        400,
        "invalid_image",
        "messages.0.content.0.image_url.url",
        id="empty image data URL",
    ),
    pytest.param(
        chat(stop=["a", "b", "c", "d", "e"]), 400, "invalid_value", "stop", id="too many stops"
    ),
]


@pytest.mark.parametrize(("body", "status", "code", "param"), CASES)
def test_bad_chat_request(
    server: RealServer, body: Any, status: int, code: str, param: str | None
) -> None:
    if isinstance(body, bytes):
        r = httpx.post(
            f"{server.v1}/chat/completions",
            content=body,
            headers={"content-type": "application/json"},
        )
    else:
        r = httpx.post(f"{server.v1}/chat/completions", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["param"] == param
    assert error["message"] and "Traceback" not in error["message"]


def _prompt_tokens(server: RealServer) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(f'iaforall_tokens_total{{kind="prompt",model="{SMOL}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_prompt_longer_than_context_is_refused_before_any_compute(server: RealServer) -> None:
    before = _prompt_tokens(server)
    long = "bonjour " * 3000  # ~3000 tokens; the context is 2048 per slot here
    r = httpx.post(
        f"{server.v1}/chat/completions", json=chat(messages=[{"role": "user", "content": long}])
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"
    assert "2048" in r.json()["error"]["message"]
    assert _prompt_tokens(server) == before


def test_bad_completion_requests(server: RealServer) -> None:
    for body, code in (
        ({"model": SMOL, "prompt": ["a", "b"]}, "unsupported_parameter"),
        ({"model": SMOL, "prompt": "a", "echo": True}, "unsupported_parameter"),
        ({"model": SMOL}, "missing_required_parameter"),
    ):
        r = httpx.post(f"{server.v1}/completions", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == code


def test_unknown_endpoint_and_method(server: RealServer) -> None:
    r = httpx.get(f"{server.v1}/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.get(f"{server.v1}/chat/completions")
    assert r.status_code == 405 and "error" in r.json()


def test_server_still_answers_after_bad_input(server: RealServer) -> None:
    r = httpx.post(f"{server.v1}/chat/completions", json=chat(max_tokens=2), timeout=60)
    assert r.status_code == 200
