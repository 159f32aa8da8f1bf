"""The browser shows a waiting user's place in line ("You are 3rd in line (about 12 s)").

The server here runs the fake engine (one slot, slow answers) in a thread of its own, so a line
forms on demand: long answers hold the slot and wait ahead of the browser's request.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from iaforall.app import create_app
from iaforall.scheduling.loop import Scheduler
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.fake_engine import FakeEngine
from tests.web.conftest import js_errors, shot, watched

CHAT = "/v1/chat/completions"


@dataclass
class LineServer:
    url: str
    loop: asyncio.AbstractEventLoop
    engine: FakeEngine
    scheduler: Scheduler
    holders: list[Future[Any]] = field(default_factory=list)

    def hold(self) -> Future[Any]:
        """A long answer (20 s) that takes the slot or waits in line until released."""
        self.engine.enqueue(*["x"] * 400)

        async def follow() -> None:
            async with (
                httpx.AsyncClient(base_url=self.url, timeout=60) as client,
                client.stream("POST", CHAT, json=_chat(stream=True)) as response,
            ):
                async for _ in response.aiter_raw():
                    pass

        holder = asyncio.run_coroutine_threadsafe(follow(), self.loop)
        self.holders.append(holder)
        return holder

    def release(self, holder: Future[Any], *, was_waiting: bool) -> None:
        holder.cancel()  # the client leaves: its place in line or its slot frees up
        if was_waiting:
            self.engine.scripts.pop()  # the long answer it would have had goes unused

    def line_is(self, running: int, waiting: int) -> None:
        for _ in range(500):
            if (self.scheduler.running(self.engine.model), self.scheduler.queue_length) == (
                running,
                waiting,
            ):
                return
            threading.Event().wait(0.01)
        raise AssertionError(f"the line never became {running} running, {waiting} waiting")


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": [{"role": "user", "content": "hold"}], **extra}


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LineServer]:
    home: Path = tmp_path_factory.mktemp("line")
    stock_store(home)
    world = FakeWorld(client=httpx.AsyncClient())
    app = create_app(fake_settings(home, max_queue=8, queue_timeout=60), factory=world.factory)
    ready = threading.Event()
    stop: asyncio.Event | None = None
    found: dict[str, Any] = {}

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with served(app) as url:
            found.update(url=url, loop=asyncio.get_running_loop())
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(20), "the fake-engine server did not start"
    url = found["url"]
    assert httpx.post(f"{url}{CHAT}", json=_chat(), timeout=10).status_code == 200  # loads it
    engine = world.engine("tiny:latest")
    engine.delay = 0.05
    server = LineServer(url, found["loop"], engine, app.state.services.scheduler)
    yield server
    for holder in server.holders:
        holder.cancel()
    assert stop is not None
    found["loop"].call_soon_threadsafe(stop.set)
    thread.join(20)


def open_line(page: Page, line: LineServer) -> None:
    page.goto(f"{line.url}/")
    page.wait_for_selector("body[data-ready]")


def test_the_waiting_user_sees_their_place_in_line(page: Page, line: LineServer) -> None:
    open_line(page, line)
    first, second, third = line.hold(), None, None
    line.line_is(1, 0)
    second = line.hold()
    line.line_is(1, 1)
    third = line.hold()
    line.line_is(1, 2)

    page.fill("#composer-input", "Hello queue")
    page.press("#composer-input", "Enter")
    status = page.locator(".msg-assistant .msg-waiting").last
    expect(status).to_have_text(re.compile(r"^You are 3rd in line \(about \d+ s\)$"))
    shot(page, "queue-third-in-line")

    line.release(second, was_waiting=True)  # one ahead leaves: the browser moves up
    expect(status).to_have_text(re.compile(r"^You are 2nd in line \(about \d+ s\)$"))
    line.release(first, was_waiting=False)  # the slot frees up: the third holder starts
    expect(status).to_have_text(re.compile(r"^You are next in line \(about \d+ s\)$"))
    line.release(third, was_waiting=False)  # the browser's turn: the fake engine echoes
    answer = page.locator(".msg-assistant").last
    expect(answer).to_have_attribute("data-status", "complete")
    expect(answer.locator(".msg-body")).to_have_text("Hello queue")
    assert js_errors(page) == []


def test_in_french_and_stopping_while_waiting(browser: Browser, line: LineServer) -> None:
    context = browser.new_context(locale="fr-FR", viewport={"width": 1200, "height": 800})
    context.set_default_timeout(15_000)
    page = watched(context.new_page())
    holders: list[Future[Any]] = []
    try:
        open_line(page, line)
        holders.append(line.hold())
        line.line_is(1, 0)
        for waiting in (1, 2):
            holders.append(line.hold())
            line.line_is(1, waiting)
        page.fill("#composer-input", "Bonjour la file")
        page.press("#composer-input", "Enter")
        status = page.locator(".msg-assistant .msg-waiting").last
        expect(status).to_have_text(re.compile(r"^Vous êtes 3e dans la file \(environ \d+ s\)$"))
        shot(page, "queue-third-in-line-fr")
        page.keyboard.press("Escape")  # stop while waiting: the place is given up
        expect(page.locator("#composer-input")).to_have_value("Bonjour la file")
        line.line_is(1, 2)  # the two holders still wait; the browser's request left
        assert js_errors(page) == []
    finally:
        for holder in holders:
            holder.cancel()
        line.line_is(0, 0)
        line.engine.scripts.clear()
        context.close()
