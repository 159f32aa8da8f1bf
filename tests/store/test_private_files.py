"""The home folder is private (0700) and the files with people's data in it are 0600, on real
files of a real server, whatever the umask; an older, looser home is tightened with a log line."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from iaforall.app import create_app
from iaforall.store.database import Database
from tests.conftest import FakeWorld, fake_settings, served, stock_store


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask, under which files are made readable by everyone (0644, 0755)."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


async def write_people_data(url: str) -> tuple[str, str]:
    """A conversation and a knowledge file, written through the API; the file's path."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        made = await client.post("/web/api/conversations", json={"title": "mine"})
        assert made.status_code == 201, made.text
        kb = (await client.post("/v1/knowledge_bases", json={"name": "notes"})).json()["id"]
        sent = await client.post(
            f"/v1/knowledge_bases/{kb}/files",
            files=[("file", ("n.md", b"# Notes\n\nThe key is under the mat."))],
        )
        assert sent.status_code == 202, sent.text
        return str(kb), str(sent.json()["data"][0]["id"])


async def test_a_new_home_is_private_and_so_are_the_files_with_data(
    tmp_path: Path, open_umask: None
) -> None:
    home = tmp_path / "fresh" / "iaforall"
    world = FakeWorld(client=httpx.AsyncClient())
    app = create_app(fake_settings(home), factory=world.factory)
    async with served(app) as url:
        kb, document = await write_people_data(url)
        assert mode(home) == 0o700
        database = home / "iaforall.db"
        # While the server runs, SQLite keeps its write-ahead log and shared memory beside it.
        for path in (database, home / "iaforall.db-wal", home / "iaforall.db-shm"):
            assert mode(path) == 0o600, path
        stored = home / "knowledge" / kb / document
        assert stored.read_bytes().startswith(b"# Notes") and mode(stored) == 0o600
        leaks = [
            p
            for p in home.rglob("*")
            if p.is_file() and mode(p) & 0o077 and "models" not in p.parts
        ]
        assert leaks == []


async def test_an_existing_open_home_and_database_are_tightened(
    tmp_path: Path, open_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    stock_store(home)  # what `iaforall pull` leaves: a home anyone may read
    sqlite3.connect(home / "iaforall.db").close()  # and a database from an older version
    assert mode(home) == 0o755 and mode(home / "iaforall.db") == 0o644
    world = FakeWorld(client=httpx.AsyncClient())
    app = create_app(fake_settings(home), factory=world.factory)
    with caplog.at_level(logging.WARNING, logger="iaforall.store.private"):
        async with served(app) as url:
            await write_people_data(url)
            assert mode(home) == 0o700
            for name in ("iaforall.db", "iaforall.db-wal", "iaforall.db-shm"):
                assert mode(home / name) == 0o600, name
    said = [r.getMessage() for r in caplog.records if r.name == "iaforall.store.private"]
    assert len(said) == 2, said
    assert f"{home} was readable by other accounts (mode 755): it is now 700" in said[0]
    assert "iaforall.db was readable by other accounts (mode 644): it is now 600" in said[1]


def test_a_database_elsewhere_is_private_too(tmp_path: Path, open_umask: None) -> None:
    """A database URL of the operator's choosing: its file is 0600, a folder made for it 0700,
    and an existing folder is left as it is (it may hold other things)."""
    shared = tmp_path / "srv"
    shared.mkdir(mode=0o755)
    database = Database(f"sqlite:///{shared / 'new' / 'people.db'}")
    database.upgrade()
    database.close()
    assert mode(shared) == 0o755 and mode(shared / "new") == 0o700
    assert mode(shared / "new" / "people.db") == 0o600
