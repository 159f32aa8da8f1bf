"""The waiting user sees the line: headers, SSE comments, the web app's `queue` events.

One slot and a slow fake engine make a queue: a long answer holds the slot while the others
wait.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from iaforall.app import create_app
from iaforall.services import Services
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.fake_engine import FakeEngine
from tests.sse import events

CHAT = "/v1/chat/completions"
POSITION, WAIT = "x-iaforall-queue-position", "x-iaforall-queue-wait-ms"


def chat(content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": [{"role": "user", "content": content}], **extra}


@dataclass
class Line:
    """A fake-engine app with one slot, its engine loaded, its services at hand."""

    client: httpx.AsyncClient
    url: str
    engine: FakeEngine
    services: Services

    def hold(self, pieces: int = 30) -> None:
        """The next answer takes `pieces` x 0.05 s."""
        self.engine.enqueue(*["x"] * pieces)


@asynccontextmanager
async def line(home: Path, queue_timeout: float = 5) -> AsyncIterator[Line]:
    stock_store(home)
    world = FakeWorld(client=httpx.AsyncClient())
    app = create_app(
        fake_settings(home, max_queue=4, queue_timeout=queue_timeout), factory=world.factory
    )
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=20) as client:
        assert (await client.post(CHAT, json=chat())).status_code == 200  # loads the engine
        engine = world.engine("tiny:latest")
        engine.delay = 0.05
        yield Line(client, url, engine, app.state.services)


@pytest.fixture
async def one_slot(tmp_path: Path) -> AsyncIterator[Line]:
    async with line(tmp_path) as world:
        yield world


async def until(condition: Any) -> None:
    """Poll the app's state (owned by the app's loop, no event to wait on) for 5 s at most."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def blocker(q: Line, pieces: int = 30) -> asyncio.Task[httpx.Response]:
    """A long answer that holds the slot; returns once it has it."""
    q.hold(pieces)
    task = asyncio.create_task(q.client.post(CHAT, json=chat("long")))
    await until(lambda: q.engine.active == 1)
    return task


async def frames(response: httpx.Response) -> AsyncIterator[str]:
    """Each SSE block (comments included) as it arrives."""
    buffer = ""
    async for text in response.aiter_text():
        buffer += text
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            yield block


async def test_served_at_once_says_position_zero(one_slot: Line) -> None:
    r = await one_slot.client.post(CHAT, json=chat())
    assert (r.headers[POSITION], r.headers[WAIT]) == ("0", "0")
    r = await one_slot.client.post(CHAT, json=chat(stream=True))
    assert (r.headers[POSITION], r.headers[WAIT]) == ("0", "0")
    assert ": queue" not in r.text
    r = await one_slot.client.post("/v1/completions", json={"model": "tiny", "prompt": "x"})
    assert r.headers[POSITION] == "0"


async def test_streams_that_wait_start_at_once_with_their_place_in_line(one_slot: Line) -> None:
    first = await blocker(one_slot)
    seen: dict[str, list[str]] = {"second": [], "third": []}
    heads: dict[str, httpx.Headers] = {}

    async def follow(name: str) -> None:
        async with one_slot.client.stream("POST", CHAT, json=chat(name, stream=True)) as r:
            assert r.status_code == 200
            heads[name] = r.headers
            async for block in frames(r):
                seen[name].append(block)

    second = asyncio.create_task(follow("second"))
    await until(lambda: seen["second"])  # the response started while it waits
    third = asyncio.create_task(follow("third"))
    await until(lambda: seen["third"])
    assert one_slot.engine.active == 1 and one_slot.services.scheduler.queue_length == 2
    assert heads["second"][POSITION] == "1" and heads["third"][POSITION] == "2"
    # The wait is estimated from the answers ahead: 30 x 0.05 s would be 1.5 s; before any
    # answer ends the default speed gives about the configured maximum of tokens.
    assert 0 < int(heads["second"][WAIT]) < int(heads["third"][WAIT])
    assert seen["second"][0].startswith(": queue position=1 wait_s=")
    assert seen["third"][0].startswith(": queue position=2 wait_s=")
    await asyncio.gather(first, second, third)
    comments = [b for b in seen["third"] if b.startswith(":")]
    assert [c.split()[2] for c in comments] == ["position=2", "position=1", "position=0"]
    data = [b for b in seen["third"] if b.startswith("data: ")]
    assert json.loads(data[0][6:])["choices"][0]["delta"]["content"] == "third"
    assert data[-1] == "data: [DONE]"


async def test_a_non_streaming_request_that_waited_says_so(one_slot: Line) -> None:
    first = await blocker(one_slot, 10)
    r = await one_slot.client.post(CHAT, json=chat())
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "hi"
    assert r.headers[POSITION] == "1" and int(r.headers[WAIT]) > 0
    await first


async def test_the_openai_sdk_reads_a_stream_that_waited(one_slot: Line) -> None:
    first = await blocker(one_slot, 10)
    client = openai.AsyncOpenAI(base_url=f"{one_slot.url}/v1", api_key="none")
    stream = await client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "patience"}], stream=True
    )
    text = [c.choices[0].delta.content async for c in stream if c.choices]
    assert "".join(t for t in text if t) == "patience"
    await first
    await client.close()


async def test_refused_at_once_keeps_its_http_status(one_slot: Line) -> None:
    first = await blocker(one_slot, 20)
    waiting = [
        asyncio.create_task(one_slot.client.post(CHAT, json=chat(stream=True))) for _ in range(4)
    ]
    await until(lambda: one_slot.services.scheduler.queue_length == 4)
    r = await one_slot.client.post(CHAT, json=chat(stream=True))
    assert r.status_code == 429 and r.headers["retry-after"]
    r = await one_slot.client.post(CHAT, json=chat(stream=True) | {"model": "nope"})
    assert r.status_code == 404
    await asyncio.gather(first, *waiting)


async def test_a_stream_that_times_out_in_line_ends_with_an_error_event(tmp_path: Path) -> None:
    async with line(tmp_path, queue_timeout=0.3) as q:
        first = await blocker(q, 20)
        r = await q.client.post(CHAT, json=chat(stream=True))
        assert r.status_code == 200 and r.headers[POSITION] == "1"
        blocks = r.text.split("\n\n")
        assert blocks[0].startswith(": queue position=1")
        assert json.loads(blocks[1][6:])["error"]["code"] == "server_busy"
        assert blocks[2] == "data: [DONE]"
        assert q.services.scheduler.queue_length == 0
        await first


async def test_a_client_leaving_the_line_frees_its_place(one_slot: Line) -> None:
    first = await blocker(one_slot, 20)
    async with one_slot.client.stream("POST", CHAT, json=chat(stream=True)) as r:
        assert r.headers[POSITION] == "1"
        assert one_slot.services.scheduler.queue_length == 1
    await until(lambda: one_slot.services.scheduler.queue_length == 0)
    await first
    assert one_slot.engine.requests[-1].messages[-1]["content"] == "long"  # never generated


# -- the web app's reply stream -----------------------------------------------------------------


async def conversation(q: Line) -> str:
    r = await q.client.post("/web/api/conversations", json={"model": "tiny"})
    assert r.status_code == 201
    cid: str = r.json()["id"]
    return cid


async def test_web_reply_waits_with_queue_events_then_starts(one_slot: Line) -> None:
    cid = await conversation(one_slot)
    first = await blocker(one_slot, 10)
    r = await one_slot.client.post(
        f"/web/api/conversations/{cid}/reply", json={"action": "send", "content": "bonjour"}
    )
    assert r.status_code == 200 and r.headers[POSITION] == "1"
    got = events(r.text)
    assert [name for name, _ in got[:3]] == ["queue", "queue", "start"]
    assert got[0][1]["position"] == 1 and got[0][1]["wait_s"] >= 0
    assert got[1][1] == {"position": 0, "wait_s": 0.0}
    assert got[2][1]["user_message"]["content"] == "bonjour"
    assert got[-2][0] == "done" and got[-2][1]["message"]["content"] == "bonjour"
    stored = (await one_slot.client.get(f"/web/api/conversations/{cid}")).json()
    assert [m["status"] for m in stored["messages"]] == ["complete", "complete"]
    await first


async def test_web_reply_served_at_once_has_no_queue_event(one_slot: Line) -> None:
    cid = await conversation(one_slot)
    r = await one_slot.client.post(
        f"/web/api/conversations/{cid}/reply", json={"action": "send", "content": "hi"}
    )
    assert r.headers[POSITION] == "0"
    assert next(name for name, _ in events(r.text)) == "start"


async def test_web_reply_that_times_out_in_line_stores_nothing(tmp_path: Path) -> None:
    async with line(tmp_path, queue_timeout=0.3) as q:
        cid = await conversation(q)
        first = await blocker(q, 20)
        r = await q.client.post(
            f"/web/api/conversations/{cid}/reply", json={"action": "send", "content": "hi"}
        )
        got = events(r.text)
        assert [name for name, _ in got] == ["queue", "message", "message"]
        assert got[1][1]["error"]["code"] == "server_busy" and got[2][1] == "[DONE]"
        stored = (await q.client.get(f"/web/api/conversations/{cid}")).json()
        assert stored["messages"] == []
        await first
