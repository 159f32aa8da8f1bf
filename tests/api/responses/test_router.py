"""/v1/responses over real HTTP on the fake engine: what reaches the model, the stream's
events when in line or failing, storage and its listing, errors in OpenAI's shape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from iaforall.core.errors import EngineUnavailable
from tests.api.test_queue import POSITION, Line, blocker, line
from tests.conftest import FakeWorld
from tests.sse import events
from tests.vision.images import data_url, text_png

RESPONSES = "/v1/responses"


def ask(content: Any = "Bonjour", **extra: Any) -> dict[str, Any]:
    return {"model": "tiny", "input": content, **extra}


@pytest.fixture
async def one_slot(tmp_path: Path) -> AsyncIterator[Line]:
    async with line(tmp_path) as world:
        yield world


async def test_the_engine_gets_the_chat_the_items_make(fake: FakeWorld) -> None:
    r = await fake.client.post(
        RESPONSES,
        json=ask(
            [{"role": "user", "content": [{"type": "input_text", "text": "Salut"}]}],
            instructions="Sois bref.",
            max_output_tokens=9,
            temperature=0.3,
        ),
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["object"] == "response" and answer["status"] == "completed"
    assert answer["output"][0]["content"][0]["text"] == "Salut"  # the fake engine echoes
    assert answer["usage"]["output_tokens"] == 1 and r.headers[POSITION] == "0"
    sent = fake.engine("tiny:latest").requests[-1]
    assert sent.messages == (  # type: ignore[union-attr]
        {"role": "system", "content": "Sois bref."},
        {"role": "user", "content": "Salut"},
    )
    assert sent.sampling.max_tokens == 9 and sent.sampling.temperature == 0.3


async def test_a_chain_gives_the_model_the_earlier_turns(fake: FakeWorld) -> None:
    first = (await fake.client.post(RESPONSES, json=ask("un", instructions="X"))).json()
    fake.engine("tiny:latest").enqueue("trois")
    second = await fake.client.post(RESPONSES, json=ask("deux", previous_response_id=first["id"]))
    assert second.status_code == 200
    assert fake.engine("tiny:latest").requests[-1].messages == (  # type: ignore[union-attr]
        {"role": "user", "content": "un"},
        {"role": "assistant", "content": "un"},
        {"role": "user", "content": "deux"},
    )
    rid = second.json()["id"]
    listed = (await fake.client.get(f"{RESPONSES}/{rid}/input_items")).json()
    assert [i["role"] for i in listed["data"]] == ["user", "assistant", "user"][::-1]
    assert listed["has_more"] is False and listed["first_id"] == listed["data"][0]["id"]
    page = (
        await fake.client.get(f"{RESPONSES}/{rid}/input_items", params={"order": "asc", "limit": 2})
    ).json()
    assert [i["role"] for i in page["data"]] == ["user", "assistant"] and page["has_more"]
    rest = await fake.client.get(
        f"{RESPONSES}/{rid}/input_items",
        params={"order": "asc", "after": page["last_id"]},
    )
    assert [i["content"][0]["text"] for i in rest.json()["data"]] == ["deux"]


async def test_a_stream_failing_mid_way_ends_with_error_then_failed(fake: FakeWorld) -> None:
    await fake.client.post(RESPONSES, json=ask())  # loads the engine
    fake.engine("tiny:latest").enqueue("Hel", EngineUnavailable("worker died"))
    r = await fake.client.post(RESPONSES, json=ask(stream=True))
    assert r.status_code == 200
    found = events(r.text)
    assert [name for name, _ in found][-2:] == ["error", "response.failed"]
    assert found[-2][1]["code"] == "engine_unavailable"
    failed = found[-1][1]["response"]
    assert failed["status"] == "failed" and failed["error"]["message"] == "worker died"
    gone = await fake.client.get(f"{RESPONSES}/{failed['id']}")
    assert gone.status_code == 404  # a failed answer is not kept


async def test_a_stream_that_waits_says_queued_then_in_progress(one_slot: Line) -> None:
    first = await blocker(one_slot, 10)
    r = await one_slot.client.post(RESPONSES, json=ask("patience", stream=True))
    await first
    assert r.headers[POSITION] == "1"
    names = [name for name, _ in events(r.text)]
    assert names[:3] == ["response.created", "response.queued", "response.in_progress"]
    created = events(r.text)[0][1]["response"]
    assert created["status"] == "queued" and created["iaforall"]["queue"]["position"] == 1
    assert names[-1] == "response.completed"


async def test_errors_are_in_openais_shape(fake: FakeWorld) -> None:
    r = await fake.client.post(RESPONSES, json={"model": "tiny"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "missing_required_parameter"
    assert r.json()["error"]["param"] == "input"
    r = await fake.client.post(RESPONSES, json=ask([]))
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"
    r = await fake.client.post(RESPONSES, json=ask(background=True))
    assert r.status_code == 400 and r.json()["error"]["param"] == "background"
    r = await fake.client.post(RESPONSES, json=ask([{"type": "reasoning", "summary": []}]))
    assert r.status_code == 400 and r.json()["error"]["param"] == "input.0.type"
    r = await fake.client.post(RESPONSES, json=ask(model="nope"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = await fake.client.post(RESPONSES, json=ask(previous_response_id="resp_nope"))
    assert r.status_code == 404 and r.json()["error"]["param"] == "previous_response_id"
    for method in ("GET", "DELETE"):
        r = await fake.client.request(method, f"{RESPONSES}/resp_nope")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_a_deleted_response_is_gone_and_store_false_keeps_nothing(fake: FakeWorld) -> None:
    kept = (await fake.client.post(RESPONSES, json=ask())).json()
    r = await fake.client.delete(f"{RESPONSES}/{kept['id']}")
    assert r.json() == {"id": kept["id"], "object": "response", "deleted": True}
    assert (await fake.client.get(f"{RESPONSES}/{kept['id']}")).status_code == 404
    unkept = (await fake.client.post(RESPONSES, json=ask(store=False))).json()
    assert unkept["store"] is False
    assert (await fake.client.get(f"{RESPONSES}/{unkept['id']}")).status_code == 404


async def test_two_requests_at_once_both_stored(fake: FakeWorld) -> None:
    answers = await asyncio.gather(
        *(fake.client.post(RESPONSES, json=ask(f"q{i}")) for i in range(3))
    )
    for answer in answers:
        rid = answer.json()["id"]
        assert (await fake.client.get(f"{RESPONSES}/{rid}")).json()["id"] == rid


async def test_an_input_image_is_read_for_the_model_as_chats_are(fake: FakeWorld) -> None:
    image = {"type": "input_image", "image_url": data_url(text_png("Seven ships")), "detail": "low"}
    question = {"type": "input_text", "text": "What does it say?"}
    asked = ask([{"role": "user", "content": [question, image]}])
    r = await fake.client.post(RESPONSES, json=asked, timeout=120)  # OCR's first load is slow
    assert r.status_code == 200, r.text
    given = fake.engine("tiny:latest").requests[-1].messages[-1]["content"]  # type: ignore[union-attr]
    assert "What does it say?" in given and "text read by OCR" in given and "Seven ships" in given
    broken = {"type": "input_image", "image_url": "data:image/png;base64,bm90IGFuIGltYWdl"}
    r = await fake.client.post(RESPONSES, json=ask([{"role": "user", "content": [broken]}]))
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
