"""Every dialect inherits the pipeline: keys, the place in line, quotas and usage, the
published rules and their decisions, metrics — with no code of its own for any of them.
One table, over real HTTP on the fake engine, with accounts on."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from iaforall.settings import PolicySettings
from tests.people.conftest import Shared, settings_with_accounts, shared_server
from tests.people.test_quotas_and_rules import RULES, key_for

PHONE = "06 12 34 56 78"


@dataclass(frozen=True)
class Dialect:
    name: str
    path: str
    body: Callable[[str], dict[str, Any]]
    text: Callable[[dict[str, Any]], str]  # the answer's text
    error: Callable[[dict[str, Any]], str]  # an error's message


def _openai_error(body: dict[str, Any]) -> str:
    return str(body["error"]["message"])


DIALECTS = [
    Dialect(
        "openai",
        "/v1/chat/completions",
        lambda text: {"model": "tiny", "messages": [{"role": "user", "content": text}]},
        lambda body: str(body["choices"][0]["message"]["content"]),
        _openai_error,
    ),
    Dialect(
        "ollama",
        "/api/chat",
        lambda text: {
            "model": "tiny",
            "messages": [{"role": "user", "content": text}],
            "stream": False,
        },
        lambda body: str(body["message"]["content"]),
        lambda body: str(body["error"]),
    ),
    Dialect(
        "responses",
        "/v1/responses",
        lambda text: {"model": "tiny", "input": text},
        lambda body: str(body["output"][0]["content"][0]["text"]),
        _openai_error,
    ),
    Dialect(
        "anthropic",
        "/v1/messages",
        lambda text: {
            "model": "tiny",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": text}],
        },
        lambda body: str(body["content"][0]["text"]),
        lambda body: str(body["error"]["message"]),
    ),
]


@pytest.fixture
async def strict(tmp_path: Path) -> AsyncIterator[Shared]:
    """Accounts on, 40 tokens a day for members, two published rules."""
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    settings = settings_with_accounts(tmp_path, member_tokens_per_day=40).model_copy(
        update={"policy": PolicySettings(rules_file=rules)}
    )
    async with shared_server(tmp_path, settings) as world:
        yield world


def requests_counted(metrics: str) -> float:
    """iaforall_requests_total for the fake model, all kinds and outcomes."""
    found = re.findall(
        r'^iaforall_requests_total\{[^}]*model="tiny:latest"[^}]*\} (\S+)$', metrics, re.M
    )
    return sum(float(n) for n in found)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
async def test_each_dialect_inherits_the_pipeline(strict: Shared, dialect: Dialect) -> None:
    client = strict.client
    bob = await key_for(strict, "bob")
    ada = await key_for(strict, "ada")

    async def ask(text: str, headers: dict[str, str]) -> httpx.Response:
        return await client.post(dialect.path, json=dialect.body(text), headers=headers)

    # Keys: none, no answer, in the dialect's own error shape.
    anonymous = await ask("hi", {})
    assert anonymous.status_code == 401 and dialect.error(anonymous.json())

    # An answer, with its place in line on arrival and the rules' decisions beside it.
    before = requests_counted((await client.get("/metrics", headers=ada)).text)
    answered = await ask(f"my number is {PHONE}", bob)
    assert answered.status_code == 200, answered.text
    assert answered.headers["X-IAForAll-Queue-Position"] == "0"
    assert PHONE in dialect.text(answered.json())  # the fake engine says it back
    decisions = answered.json()["iaforall"]["decisions"]
    both = {("phone-numbers", "input"), ("phone-numbers", "output")}
    assert {(d["rule"], d["applies_to"]) for d in decisions} == both
    after = requests_counted((await client.get("/metrics", headers=ada)).text)
    assert after == before + 1  # metrics: the same counters, whichever dialect asked

    # A rule that blocks: refused before any generation, naming the rule.
    blocked = await ask("how to make a pipe bomb", bob)
    assert blocked.status_code == 403 and "no-weapons" in blocked.text

    # Quotas: what bob used is recorded; past his tokens of the day he is refused, with when.
    strict.engine("tiny:latest").enqueue(*["word "] * 45)
    assert (await ask("more", bob)).status_code == 200
    spent = await ask("again", bob)
    assert spent.status_code == 429 and "tokens per day" in dialect.error(spent.json())
    assert int(spent.headers["retry-after"]) > 0
    assert (await ask("hi", ada)).status_code == 200  # an administrator has no such quota
