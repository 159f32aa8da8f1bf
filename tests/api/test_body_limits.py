"""Every route of the app has a body limit, enforced while the body streams in: a declared
length past it is refused before a byte is read, and a body without one is refused the moment
it passes, whoever asks (no account needed to be refused)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount, Route, WebSocketRoute

from iaforall.api.limits import CONTROL_LIMIT, families, family_of
from iaforall.api.web.schemas import MAX_TEXT
from iaforall.app import create_app
from iaforall.settings import ImageSettings, KnowledgeSettings, Settings, VoiceSettings
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.people.conftest import settings_with_accounts

CHUNK = 256 * 1024


def small(settings: Settings) -> Settings:
    """Limits small enough to pass quickly in a test."""
    return settings.model_copy(
        update={
            "images": ImageSettings(image_max_count=1, image_max_bytes=1000),
            "voice": VoiceSettings(max_audio_mb=1),
            "knowledge": KnowledgeSettings(document_max_mb=1),
        }
    )


def every_route(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, a concrete path) for each route and method of the app, static files included."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            yield "GET", f"{context.path}/app.js"
            continue
        if isinstance(route, WebSocketRoute):  # no body: its messages are bounded (realtime.py)
            continue
        assert isinstance(route, Route), route
        path = re.sub(r"\{[^}]+\}", "x1", str(context.path))
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                yield method, path


async def raw_status(url: str, method: str, path: str, length: int) -> tuple[int, bytes]:
    """The status and body of a request that declares `length` bytes and sends none."""
    where = urlsplit(url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    size = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
    body = await reader.readexactly(size)
    writer.close()
    return int(head.split()[1]), body


async def test_every_route_refuses_a_declared_body_past_its_family_limit(tmp_path: Path) -> None:
    stock_store(tmp_path)
    world = FakeWorld(client=httpx.AsyncClient())
    settings = small(fake_settings(tmp_path))
    app = create_app(settings, factory=world.factory)
    table = families(settings)
    routes = list(every_route(app))
    assert len(routes) > 60, routes  # the walk sees the whole app
    async with served(app) as url:
        for method, path in routes:
            limit = family_of(path, table).limit
            status, body = await raw_status(url, method, path, limit + 1)
            assert status == 413, (method, path, status, body)
            error = json.loads(body)["error"]
            message = error if path.startswith("/api/") else error["message"]
            assert "larger than" in message, (method, path, body)  # Ollama's shape under /api


def chunks(total: int, pulled: list[int]) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        piece = b"x" * CHUNK
        while pulled[0] < total:
            pulled[0] += CHUNK
            yield piece

    return gen()


async def test_a_body_without_a_length_is_refused_as_soon_as_it_passes(tmp_path: Path) -> None:
    """Streamed in chunks, through the app itself: no route reads past its limit by more
    than one chunk, and those that read a body answer 413."""
    stock_store(tmp_path)
    world = FakeWorld(client=httpx.AsyncClient())
    settings = small(fake_settings(tmp_path))
    app = create_app(settings, factory=world.factory)
    table = families(settings)
    async with served(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for method, path in every_route(app):
                if method not in ("POST", "PUT", "PATCH"):
                    continue
                limit = family_of(path, table).limit
                pulled = [0]
                response = await client.request(
                    method,
                    path,
                    content=chunks(limit + 8 * CHUNK, pulled),
                    headers={"content-type": "application/json"},
                )
                assert pulled[0] <= limit + CHUNK, (method, path, pulled[0], limit)
                assert response.status_code < 500, (method, path, response.text)
                if "x1" not in path:  # the routes that read their body at once
                    assert response.status_code in (400, 404, 413, 415), (method, path)
            # the sign-in routes, reached without an account, are the ones that mattered most
            for path in ("/web/api/session", "/web/api/setup", "/v1/chat/completions"):
                pulled = [0]
                response = await client.post(
                    path,
                    content=chunks(400 * CHUNK * 40, pulled),
                    headers={"content-type": "application/json"},
                )
                assert response.status_code == 413, (path, response.text)
                assert pulled[0] <= family_of(path, table).limit + CHUNK


async def test_sign_in_refuses_a_huge_body_without_an_account(tmp_path: Path) -> None:
    """The route that needs no account answers 413 at once over real HTTP: nothing is held."""
    stock_store(tmp_path)
    world = FakeWorld(client=httpx.AsyncClient())
    app = create_app(settings_with_accounts(tmp_path), factory=world.factory)
    async with served(app) as url:
        for path in ("/web/api/session", "/web/api/setup"):
            status, body = await raw_status(url, "POST", path, 400_000_000)
            assert status == 413, body
            assert json.loads(body)["error"]["code"] == "payload_too_large"
        # and a small one still reaches the handler
        async with httpx.AsyncClient(base_url=url) as client:
            wrong = await client.post("/web/api/session", json={"name": "x", "password": "y"})
            assert wrong.status_code == 401
    assert CONTROL_LIMIT <= 1_000_000


async def test_the_longest_system_prompt_fits_its_family(fake: FakeWorld) -> None:
    """200,000 characters, each escaped by JSON as \\uXXXX: 1.2 MB, past the 1 MB of control
    routes, within the conversations' own limit."""
    created = await fake.client.post("/web/api/conversations", json={})
    assert created.status_code == 201, created.text
    prompt = "漢" * MAX_TEXT
    changed = await fake.client.patch(
        f"/web/api/conversations/{created.json()['id']}",
        content=json.dumps({"system_prompt": prompt}),  # ASCII only: \u6f22 for each
        headers={"content-type": "application/json"},
    )
    assert changed.status_code == 200, changed.text[:300]
    assert len(changed.request.content) > CONTROL_LIMIT
