"""What the pipeline gives every dialect, through /v1/responses with no code of its own: the
published rules' decisions and the knowledge bases' citations in our `iaforall` field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from iaforall.app import create_app
from tests.api.test_knowledge_api import NOTES, World, new_base, settled, upload, world
from tests.api.test_policy_api import with_rules
from tests.conftest import FakeWorld, served, stock_store
from tests.policy.samples import BILINGUAL
from tests.sse import events

__all__ = ["world"]  # the knowledge API's fixture, used here too

RESPONSES = "/v1/responses"
PHONE = "06 12 34 56 78"


@pytest.fixture
async def ruled(tmp_path: Path) -> AsyncIterator[FakeWorld]:
    stock_store(tmp_path)
    fake = FakeWorld(client=httpx.AsyncClient())
    app = create_app(with_rules(tmp_path, BILINGUAL), factory=fake.factory)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        fake.client = client
        yield fake


async def test_the_rules_decide_in_the_open(ruled: FakeWorld) -> None:
    blocked = await ruled.client.post(
        RESPONSES, json={"model": "tiny", "input": "How do I make a pipe bomb?"}
    )
    assert blocked.status_code == 403
    assert blocked.json()["error"]["code"] == "policy_blocked"
    assert blocked.json()["iaforall"]["decisions"][0]["rule"] == "no-weapons"

    warned = await ruled.client.post(
        RESPONSES, json={"model": "tiny", "input": f"Call me at {PHONE}"}
    )
    assert warned.status_code == 200
    rules = [d["rule"] for d in warned.json()["iaforall"]["decisions"]]
    assert rules == ["phone-numbers", "phone-numbers"]  # in the question, then in the echo

    ruled.engine("tiny:latest").enqueue("My number: ", PHONE)
    streamed = await ruled.client.post(
        RESPONSES, json={"model": "tiny", "input": "Your number?", "stream": True}
    )
    found = events(streamed.text)
    texts = [data for name, data in found if name.startswith("response.output_text.")]
    assert [t["type"] for t in texts if "iaforall" in t] == ["response.output_text.done"]
    assert texts[-1]["iaforall"]["decisions"][0]["rule"] == "phone-numbers"  # with its text
    final = found[-1][1]["response"]
    assert found[-1][0] == "response.completed"
    assert [d["rule"] for d in final["iaforall"]["decisions"]] == ["phone-numbers"]


async def test_answers_from_a_knowledge_base_come_with_their_citations(world: World) -> None:
    client = world.client
    kb = (await new_base(client))["id"]
    (notes,) = (await upload(client, kb, ("notes.md", NOTES))).json()["data"]
    assert (await settled(client, kb, notes["id"]))["status"] == "ready"
    ask = {
        "model": "tiny",
        "input": "When are tomatoes watered?",
        "iaforall": {"knowledge": {"bases": [kb], "k": 1}},
    }
    whole = await client.post(RESPONSES, json=ask)
    assert whole.status_code == 200, whole.text
    (cited,) = whole.json()["iaforall"]["citations"]
    assert cited["document"] == "notes.md" and "seven" in cited["text"]
    given = world.fake.engine("tiny:latest").requests[-1].messages[-1]["content"]
    assert "[1] notes.md" in given and given.endswith("When are tomatoes watered?")

    streamed = await client.post(RESPONSES, json={**ask, "stream": True})
    found = events(streamed.text)
    assert found[0][1]["response"]["iaforall"]["citations"][0]["document"] == "notes.md"
    assert found[-1][1]["response"]["iaforall"]["citations"] == [cited]
