"""The model's built-in system prompt on the real server with SmolLM2's real chat template:
shown where it is used, absent where it is removed, and used per model as measured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from iaforall.models.packaged import PACKAGED
from tests.real_server import QWEN, SMOL, RealServer, start_server, stop_server

SMOLLM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
QWEN_PROMPT = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def builtin_on(model_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """A server whose operator turned the templates' own prompts on for every model."""
    log = tmp_path_factory.mktemp("logs") / "builtin-on.log"
    real = start_server(model_home, log, IAFORALL_TEMPLATE_DEFAULT_SYSTEM="on")
    yield real
    stop_server(real)


def returned_prompt(server: RealServer, messages: list[dict[str, Any]], model: str = SMOL) -> str:
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": 1,
        "iaforall": {"return_prompt": True},
    }
    response = httpx.post(f"{server.v1}/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    prompt: str = response.json()["iaforall"]["prompt"]
    return prompt


def test_the_builtin_prompt_is_in_what_the_model_sees_unless_removed(
    builtin_on: RealServer,
) -> None:
    assert SMOLLM_PROMPT in returned_prompt(builtin_on, HELLO)
    removed = [{"role": "system", "content": ""}, *HELLO]
    assert SMOLLM_PROMPT not in returned_prompt(builtin_on, removed)

    shown = httpx.post(f"{builtin_on.v1}/chat/prompt", json={"model": SMOL, "messages": HELLO})
    assert SMOLLM_PROMPT in shown.json()["prompt"]
    assert shown.json()["builtin_system_prompt"] == {"text": SMOLLM_PROMPT, "used": True}


def test_a_conversation_removes_it_in_the_web_app(builtin_on: RealServer) -> None:
    api = f"{builtin_on.url}/web/api"
    read = httpx.get(f"{api}/models/builtin-prompt", params={"model": SMOL}, timeout=60)
    assert read.json() == {"model": SMOL, "text": SMOLLM_PROMPT, "used": True}
    for removed in (False, True):
        conversation = httpx.post(
            f"{api}/conversations", json={"model": SMOL, "remove_builtin_prompt": removed}
        ).json()
        shown = httpx.post(
            f"{api}/conversations/{conversation['id']}/prompt", json={"draft": "Hi"}, timeout=60
        ).json()
        assert (SMOLLM_PROMPT in shown["prompt"]) is not removed
        assert shown["builtin_system_prompt"]["used"] is not removed


@pytest.mark.parametrize(("model", "text"), [(SMOL, SMOLLM_PROMPT), (QWEN, QWEN_PROMPT)])
def test_by_default_each_model_gets_what_was_measured_for_it(
    server: RealServer, model: str, text: str
) -> None:
    """One server, two models, each its own measured choice (SmolLM2 keeps its prompt, Qwen
    0.5B gets an empty one: bench/quality.py)."""
    measured = PACKAGED[model].builtin_system_prompt
    assert (text in returned_prompt(server, HELLO, model)) is measured
    read = httpx.get(
        f"{server.url}/web/api/models/builtin-prompt", params={"model": model}, timeout=60
    )
    assert read.json() == {"model": model, "text": text, "used": measured}
