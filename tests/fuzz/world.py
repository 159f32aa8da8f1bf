"""Servers to fuzz: the real app on loopback with the fake engine, in local mode and with
accounts on, holding one of each kind of thing (so generated ids can name real ones).

The fuzzer talks to it from another process (`running`): on Python 3.11.7, two threads of one
process that both build Python ASTs (Hypothesis reads its lambdas' source, pytest rewrites
modules) can fail with "AST constructor recursion depth mismatch"; and the server gets a core
of its own."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from iaforall.app import create_app
from iaforall.services import Services
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.people.conftest import settings_with_accounts
from tests.vision.images import data_url, text_png

PASSWORD = "correct horse battery"


@dataclass
class Target:
    """A served app, and what exists in it: ids by name, for each use."""

    app: FastAPI
    url: str
    ids: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # user name -> an API key of theirs

    @property
    def services(self) -> Services:
        svc: Services = self.app.state.services
        return svc


@asynccontextmanager
async def target(home: Path, *, accounts: bool, who: str = "bob") -> AsyncIterator[Target]:
    """With accounts on, the admin `ada` and the members `bob`, `carol` and `dave` exist, and
    the things are `who`'s; in local mode, the local user's."""
    stock_store(home)
    world = FakeWorld(client=httpx.AsyncClient())
    local = fake_settings(home, max_queue=4, queue_timeout=5)
    settings = settings_with_accounts(home) if accounts else local
    app = create_app(settings, factory=world.factory)
    async with served(app) as url:
        found = Target(app, url)
        await _seed(found, accounts=accounts, who=who)
        yield found


async def _seed(found: Target, *, accounts: bool, who: str) -> None:
    people = found.services.accounts
    people_made = (("ada", "admin"), ("bob", "member"), ("carol", "member"), ("dave", "member"))
    for name, role in people_made:
        if accounts or name in ("carol", "dave"):  # users to change and delete in local mode
            people.create_user(name, PASSWORD, role)
    headers = {}
    if accounts:
        found.keys[who] = people.create_key(who, "fuzz")[1]
        headers = {"Authorization": f"Bearer {found.keys[who]}"}
        # keys the fuzzer may revoke (never the one it signs in with)
        found.ids["doomed_key"] = people.create_key(who, "doomed")[0].id
    async with httpx.AsyncClient(base_url=found.url, headers=headers, timeout=60) as client:
        await _seed_things(client, found.ids)


async def _seed_things(client: httpx.AsyncClient, ids: dict[str, str]) -> None:
    """One conversation, knowledge base, file and stored response per use: one kept for
    reading and changing, one to delete; and a conversation holding an image."""

    async def keep(name: str, response: httpx.Response) -> dict[str, Any]:
        assert response.status_code < 300, response.text
        body: dict[str, Any] = response.json()
        ids[name] = str(body["id"])
        return body

    for name in ("conversation", "doomed_conversation"):
        await keep(name, await client.post("/web/api/conversations", json={"model": "tiny"}))
    note = {"url": data_url(text_png("Fuzz")), "name": "note.png"}
    imported = {
        "format": "iaforall.conversation",
        "version": 1,
        "title": "with an image",
        "model": "tiny",
        "messages": [{"role": "user", "content": "look", "images": [note]}],
    }
    response = await client.post("/web/api/conversations/import", content=json.dumps(imported))
    shown = await keep("image_conversation", response)
    ids["image"] = str(shown["messages"][0]["images"][0]["id"])
    for name in ("base", "doomed_base"):
        await keep(name, await client.post("/v1/knowledge_bases", json={"name": name}))
    for name in ("file", "doomed_file"):
        files = [("file", (f"{name}.md", f"# {name}\n\nSome words about {name}.".encode()))]
        response = await client.post(f"/v1/knowledge_bases/{ids['base']}/files", files=files)
        assert response.status_code == 202, response.text
        ids[name] = response.json()["data"][0]["id"]
    for name in ("response", "doomed_response"):  # stored answers of the Responses API
        await keep(name, await client.post("/v1/responses", json={"model": "tiny", "input": name}))


@dataclass(frozen=True)
class Running:
    """A server in another process: its address, its API schema and what exists in it."""

    url: str
    schema: dict[str, Any]
    ids: dict[str, str]
    keys: dict[str, str]


@contextmanager
def running(home: Path, *, accounts: bool, who: str = "bob") -> Iterator[Running]:
    """`target` in a child process (python -m tests.fuzz.world), until the block ends."""
    command = [sys.executable, "-m", "tests.fuzz.world", str(home), str(accounts), who]
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(command, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    try:
        ready = child.stdout.readline()
        assert ready, f"the server to fuzz did not start (exit status {child.wait()})"
        yield Running(**json.loads(ready))
    finally:
        child.stdin.close()  # the child stops when its input ends
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


async def _serve(home: Path, accounts: bool, who: str) -> None:
    async with target(home, accounts=accounts, who=who) as found:
        ready = {
            "url": found.url,
            "schema": found.app.openapi(),
            "ids": found.ids,
            "keys": found.keys,
        }
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1]), sys.argv[2] == "True", sys.argv[3]))
