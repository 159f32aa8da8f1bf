"""The real app on a real PostgreSQL server: conversations created, listed and searched over
HTTP, migrated by the app itself at start (IAFORALL_DATABASE_URL)."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from iaforall.app import create_app
from iaforall.settings import DatabaseSettings
from tests.conftest import FakeWorld, fake_settings, served, stock_store

API = "/web/api/conversations"


async def test_the_web_app_keeps_its_conversations_in_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    stock_store(tmp_path)
    settings = fake_settings(tmp_path).model_copy(
        update={"database": DatabaseSettings(database_url=postgres_url)}
    )
    world = FakeWorld(client=httpx.AsyncClient())
    app = create_app(settings, factory=world.factory)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        kitchen = (await client.post(API, json={"model": "tiny", "title": "Cuisine"})).json()
        chat = (await client.post(API, json={"model": "tiny"})).json()
        reply = await client.post(f"{API}/{chat['id']}/reply", json={"content": "Des crêpes ?"})
        assert reply.status_code == 200, reply.text

        listed = (await client.get(API)).json()["data"]
        assert [c["id"] for c in listed] == [chat["id"], kitchen["id"]]  # most recent first
        assert [c["message_count"] for c in listed] == [2, 0]
        found = (await client.get(API, params={"q": "CREPES"})).json()["data"]
        assert [c["id"] for c in found] == [chat["id"]] and "crêpes" in found[0]["snippet"]
        by_title = (await client.get(API, params={"q": "cuisine"})).json()["data"]
        assert [c["id"] for c in by_title] == [kitchen["id"]]
        stored = (await client.get(f"{API}/{chat['id']}")).json()
        assert [(m["role"], m["content"]) for m in stored["messages"]] == [
            ("user", "Des crêpes ?"),
            ("assistant", "Des crêpes ?"),  # the fake engine echoes
        ]
    assert not (tmp_path / "iaforall.db").exists()  # nothing went to the default SQLite

    # They are in PostgreSQL, where another process would find them.
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        titles = connection.execute(text("select title from conversations order by title"))
        contents = connection.execute(text("select content from messages"))
        assert [r[0] for r in titles] == ["Cuisine", "Des crêpes ?"]
        assert [r[0] for r in contents] == ["Des crêpes ?", "Des crêpes ?"]
    engine.dispose()
