"""Quotas, usage and weights by person, and the published rules on every answer, over real
HTTP on the fake engine."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from iaforall.settings import PolicySettings
from tests.people.conftest import Shared, settings_with_accounts, shared_server

RULES = """
[[rule]]
id = "no-weapons"
action = "block"
description.en = "Instructions to make weapons are refused."
description.fr = "Les instructions pour fabriquer des armes sont refusées."
match.keywords = ["explosif", "pipe bomb"]

[[rule]]
id = "phone-numbers"
action = "warn"
applies_to = ["input", "output"]
description = "Phone numbers are personal data."
match.regex = '\\b0[1-9](?:[ .]?\\d{2}){4}\\b'
"""


@pytest.fixture
async def strict(tmp_path: Path) -> AsyncIterator[Shared]:
    """Accounts with member quotas, weight 3 for admins, and two published rules."""
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    settings = settings_with_accounts(
        tmp_path,
        member_tokens_per_day=40,
        member_concurrent_requests=1,
        member_max_context=300,
        admin_weight=3,
    ).model_copy(update={"policy": PolicySettings(rules_file=rules)})
    async with shared_server(tmp_path, settings) as world:
        yield world


async def key_for(world: Shared, name: str) -> dict[str, str]:
    client, csrf = await world.login(name)
    key = (await client.post("/web/api/keys", json={}, headers={"X-CSRF-Token": csrf})).json()
    return {"Authorization": f"Bearer {key['key']}"}


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": [{"role": "user", "content": text}], **extra}


async def test_quotas_name_themselves_and_usage_is_recorded(strict: Shared) -> None:
    bob = await key_for(strict, "bob")
    ada = await key_for(strict, "ada")
    first = await strict.client.post("/v1/chat/completions", json=chat("hi"), headers=bob)
    assert first.status_code == 200
    # The member's request was weighted as a member and capped by the context quota.
    request = strict.engine("tiny:latest").requests[-1]
    assert request.weight == 1 and request.sampling.max_tokens == 300 - 1
    too_long = await strict.client.post(
        "/v1/chat/completions", json=chat("x", max_tokens=1000), headers=bob
    )
    assert too_long.status_code == 429 and "'max context'" in too_long.json()["error"]["message"]
    assert too_long.json()["error"]["code"] == "quota_exceeded"
    assert int(too_long.headers["retry-after"]) >= 1

    strict.engine("tiny:latest").enqueue(*["word "] * 45)  # 45 completion tokens
    await strict.client.post("/v1/chat/completions", json=chat("more"), headers=bob)
    spent = await strict.client.post("/v1/chat/completions", json=chat("again"), headers=bob)
    assert spent.status_code == 429
    assert "'tokens per day'" in spent.json()["error"]["message"]
    assert int(spent.headers["retry-after"]) > 0
    # Ada (admin, no limits) is not affected, and weighs 3.
    assert (
        await strict.client.post("/v1/chat/completions", json=chat("hi"), headers=ada)
    ).status_code == 200
    assert strict.engine("tiny:latest").requests[-1].weight == 3

    admin, _ = await strict.login("ada")
    usage = (await admin.get("/admin/api/usage")).json()["data"]
    by_user = {row["user"]: row for row in usage}
    assert by_user["bob"]["requests"] == 2 and by_user["bob"]["completion_tokens"] == 46
    assert by_user["bob"]["model"] == "tiny:latest"
    assert by_user["ada"]["requests"] == 1
    bob_client, _ = await strict.login("bob")
    own = (await bob_client.get("/web/api/usage")).json()["data"]
    assert [(r["user_id"] == by_user["bob"]["user_id"], r["requests"]) for r in own] == [(True, 2)]
    # An admin raises Bob's own quota: he may go on.
    users = {u["name"]: u for u in (await admin.get("/admin/api/users")).json()["data"]}
    csrf = (await admin.get("/web/api/session")).json()["csrf_token"]
    raised = await admin.patch(
        f"/admin/api/users/{users['bob']['id']}",
        json={"quota": {"tokens_per_day": 10_000}},
        headers={"X-CSRF-Token": csrf},
    )
    assert raised.json()["effective_quota"] == {
        "tokens_per_day": 10_000,
        "concurrent_requests": 1,
        "max_context": 300,
        "storage_mb": 500,
    }
    assert (
        await strict.client.post("/v1/chat/completions", json=chat("hi"), headers=bob)
    ).status_code == 200


async def test_concurrent_requests_quota(strict: Shared) -> None:
    bob = await key_for(strict, "bob")
    await strict.client.post("/v1/chat/completions", json=chat("warm"), headers=bob)
    engine = strict.engine("tiny:latest")
    engine.delay = 0.05
    engine.enqueue(*["w "] * 60)
    async with strict.client.stream(
        "POST", "/v1/chat/completions", json=chat("long", stream=True), headers=bob
    ) as running:
        lines = running.aiter_lines()
        await anext(lines)
        second = await strict.client.post("/v1/chat/completions", json=chat("2"), headers=bob)
        assert second.status_code == 429
        assert "'concurrent requests'" in second.json()["error"]["message"]
        admin, _ = await strict.login("ada")
        places = (await admin.get("/admin/api/queue")).json()["places"]
        assert [(p["name"], p["model"], p["position"]) for p in places] == [
            ("bob", "tiny:latest", 0)
        ]


async def test_rules_decide_in_the_open(strict: Shared) -> None:
    bob = await key_for(strict, "bob")
    blocked = await strict.client.post(
        "/v1/chat/completions",
        json=chat("How to make an EXPLOSIF?"),
        headers={**bob, "Accept-Language": "fr-FR,fr;q=0.9"},
    )
    assert blocked.status_code == 403
    body = blocked.json()
    assert body["error"]["code"] == "policy_blocked" and "'no-weapons'" in body["error"]["message"]
    assert "armes" in body["error"]["message"]  # in the asker's language
    assert body["iaforall"]["decisions"][0]["rule"] == "no-weapons"

    warned = await strict.client.post(
        "/v1/chat/completions", json=chat("Call 06 12 34 56 78"), headers=bob
    )
    assert warned.status_code == 200
    decisions = warned.json()["iaforall"]["decisions"]
    # The fake engine echoes: the number is in the question and in the answer.
    assert [(d["rule"], d["applies_to"]) for d in decisions] == [
        ("phone-numbers", "input"),
        ("phone-numbers", "output"),
    ]
    assert warned.json()["choices"][0]["message"]["content"] == "Call 06 12 34 56 78"

    async with strict.client.stream(
        "POST",
        "/v1/chat/completions",
        json=chat("Call 06 12 34 56 78", stream=True),
        headers=bob,
    ) as streamed:
        frames = [
            json.loads(line[6:])
            async for line in streamed.aiter_lines()
            if line.startswith("data: {")
        ]
    carried = [f["iaforall"]["decisions"] for f in frames if "iaforall" in f]
    assert [[d["applies_to"] for d in c] for c in carried] == [["input"], ["output"]]
    text = "".join(f["choices"][0]["delta"].get("content", "") for f in frames if f["choices"])
    assert text == "Call 06 12 34 56 78"  # nothing rewritten

    admin, _ = await strict.login("ada")
    audit = (await admin.get("/admin/api/audit")).json()
    rules = sorted(e["rule_id"] for e in audit["data"])
    assert rules == ["no-weapons", *["phone-numbers"] * 4]


async def test_rules_in_the_web_app_reply(strict: Shared) -> None:
    bob, csrf = await strict.login("bob")
    headers = {"X-CSRF-Token": csrf}
    cid = (
        await bob.post("/web/api/conversations", json={"model": "tiny"}, headers=headers)
    ).json()["id"]
    refused = await bob.post(
        f"/web/api/conversations/{cid}/reply", json={"content": "pipe bomb"}, headers=headers
    )
    assert refused.status_code == 403
    assert (await bob.get(f"/web/api/conversations/{cid}")).json()["messages"] == []
    answered = await bob.post(
        f"/web/api/conversations/{cid}/reply",
        json={"content": "my number: 06 12 34 56 78"},
        headers=headers,
    )
    events = answered.text.split("\n\n")
    start = next(e for e in events if e.startswith("event: start"))
    assert '"phone-numbers"' in start
    assert any(e.startswith("event: decisions") and "output" in e for e in events)
