"""The image worker's life: a drawing whose client leaves stops between two steps (its slot
freed), and a worker killed mid-drawing fails that drawing with a clean error event while the
next request starts a new worker and is drawn."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tests.images.conftest import SLOW, DrawWorld

pytestmark = pytest.mark.timeout(60)
STEPS = 50
LONG = {"model": SLOW, "prompt": "a long drawing", "size": "512x512", "steps": STEPS}


async def events(response: httpx.Response) -> AsyncIterator[dict[str, object]]:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            yield json.loads(line[6:])


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_client_that_leaves_stops_the_drawing_between_two_steps(
    drawing: DrawWorld,
) -> None:
    runtime = drawing.runtime(SLOW)
    async with drawing.client.stream(
        "POST", "/v1/images/generations", json={**LONG, "stream": True}
    ) as response:
        assert response.status_code == 200
        async for event in events(response):
            if event["type"] == "iaforall.image_progress":
                break  # and the connection closes
    await wait_until(lambda: runtime.cancelled == 1, "the drawing to be cancelled")
    assert 1 <= runtime.last_steps < STEPS
    pid = runtime.pid()
    # the slot is free and the same worker draws the next one
    quick = await drawing.client.post(
        "/v1/images/generations", json={**LONG, "steps": 1, "size": "256x256"}
    )
    assert quick.status_code == 200, quick.text
    assert runtime.pid() == pid and runtime.drawn >= 1


async def test_a_worker_killed_mid_drawing_gives_a_clean_error_and_the_next_one_works(
    drawing: DrawWorld,
) -> None:
    runtime = drawing.runtime(SLOW)
    said: list[dict[str, object]] = []
    async with drawing.client.stream(
        "POST", "/v1/images/generations", json={**LONG, "stream": True}
    ) as response:
        assert response.status_code == 200
        async for event in events(response):
            said.append(event)
            if event.get("type") == "iaforall.image_progress" and event["step"] == 1:
                pid = runtime.pid()
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
    error = said[-1]["error"]
    assert isinstance(error, dict)
    assert error["code"] == "engine_unavailable" and "try again" in error["message"]
    again = await drawing.client.post(
        "/v1/images/generations", json={**LONG, "steps": 1, "size": "256x256"}
    )
    assert again.status_code == 200, again.text
    assert runtime.pid() not in (None, pid)


async def test_a_picture_asked_while_another_is_drawn_waits_its_turn_and_is_told_its_place(
    drawing: DrawWorld,
) -> None:
    first = await drawing.client.send(
        drawing.client.build_request(
            "POST", "/v1/images/generations", json={**LONG, "stream": True}
        ),
        stream=True,
    )
    try:
        said = events(first)
        while (await anext(said))["type"] != "iaforall.image_progress":
            pass
        async with drawing.client.stream(
            "POST",
            "/v1/images/generations",
            json={**LONG, "steps": 1, "size": "256x256", "stream": True},
        ) as second:
            assert second.headers["X-IAForAll-Queue-Position"] == "1"
            await first.aclose()  # the first one's client leaves: the second's turn comes
            lines = [line async for line in second.aiter_lines() if line]
    finally:
        await first.aclose()
    assert lines[0].startswith(": queue position=1")
    assert json.loads(lines[-1][6:])["type"] == "image_generation.completed"


async def test_a_whole_answer_whose_client_gives_up_is_cancelled_too(drawing: DrawWorld) -> None:
    runtime = drawing.runtime(SLOW)
    await runtime.start()  # loaded: the client gives up during the drawing, not the load
    before = runtime.cancelled
    async with httpx.AsyncClient(base_url=drawing.url, timeout=0.3) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.post("/v1/images/generations", json={**LONG, "size": "768x512"})
    await wait_until(lambda: runtime.cancelled == before + 1, "the drawing to be cancelled")
    assert runtime.last_steps < STEPS
