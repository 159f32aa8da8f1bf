"""kill -9 of a real server in the middle of a backup download and in the middle of a
streamed answer: the database opens, passes SQLite's integrity check and holds every message
stored before the kill; the server starts again on it, and the next backup cleans up."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from iaforall.models.store import ModelStore
from tests.backup.homes import contents, fill, settings_for
from tests.real_server import SMOL, RealServer, launch_server, start_server, stop_server

API = "/web/api/conversations"


@pytest.fixture
def home(model_home: Path, tmp_path: Path) -> Path:
    """A home of its own (the server is killed), with the test model linked in, and data."""
    home = tmp_path / "home"
    fill(settings_for(home), conversations=5, document_bytes=4_000_000, conversations_of="local")
    ModelStore(home, install_missing=False).link(
        model_home / "models" / f"{SMOL.replace(':', '@')}.gguf", SMOL
    )
    return home


@pytest.fixture
def killable(home: Path, tmp_path: Path) -> Iterator[list[RealServer]]:
    """Servers started on `home`; any still running at the end is stopped."""
    started: list[RealServer] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            stop_server(server)


def _kill(server: RealServer) -> None:
    """kill -9 of the server, and of its model worker (a real crash takes both)."""
    worker = server.model(SMOL)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    if worker and worker.get("pid"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(worker["pid"]), signal.SIGKILL)


def _stored(server: RealServer) -> dict[str, list[tuple[str, str]]]:
    """Every conversation's messages (id, content), as the server gives them."""
    listing = httpx.get(f"{server.url}{API}", timeout=10).json()["data"]
    found = {}
    for conversation in listing:
        body = httpx.get(f"{server.url}{API}/{conversation['id']}", timeout=10).json()
        found[conversation["id"]] = [(m["id"], m["content"]) for m in body["messages"]]
    return found


def _conversation(server: RealServer, max_tokens: int) -> str:
    settings = {"max_tokens": max_tokens, "temperature": 0}
    created = httpx.post(
        f"{server.url}{API}", json={"model": SMOL, "settings": settings}, timeout=10
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _answered(server: RealServer, turns: int) -> str:
    cid = _conversation(server, 4)
    for i in range(turns):
        reply = httpx.post(
            f"{server.url}{API}/{cid}/reply", json={"content": f"Say {i}."}, timeout=60
        )
        assert reply.status_code == 200, reply.text
    return cid


def _database_is_sound(home: Path) -> None:
    connection = sqlite3.connect(home / "iaforall.db")
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()


def _after_restart(home: Path, tmp_path: Path, killable: list[RealServer]) -> RealServer:
    again = launch_server(home, tmp_path / "again.log", IAFORALL_PRELOAD="false")
    killable.append(again)
    return again


def test_kill_during_a_streamed_answer_keeps_every_stored_message(
    home: Path, tmp_path: Path, killable: list[RealServer]
) -> None:
    server = start_server(home, tmp_path / "server.log")
    killable.append(server)
    answered = _answered(server, 2)
    cid = _conversation(server, 1500)
    before = _stored(server)
    assert len(before[answered]) == 4
    with httpx.stream(
        "POST", f"{server.url}{API}/{cid}/reply", json={"content": "Count to 500."}, timeout=60
    ) as streamed:
        frames = streamed.iter_lines()
        received = sum(1 for line, _ in zip(frames, range(40), strict=False) if line)
        assert received > 5
        _kill(server)

    _database_is_sound(home)
    after = _stored(_after_restart(home, tmp_path, killable))
    for conversation, messages in before.items():
        assert after[conversation][: len(messages)] == messages
    # the question asked just before the kill was stored too (its answer never finished)
    assert after[cid][len(before[cid])][1] == "Count to 500."


def test_kill_during_a_backup_download_leaves_the_database_whole(
    home: Path, tmp_path: Path, killable: list[RealServer]
) -> None:
    # no model needed: the conversations were stored by `fill`
    server = launch_server(home, tmp_path / "server.log", IAFORALL_PRELOAD="false")
    killable.append(server)
    before = _stored(server)
    assert len(before) == 5
    expected = contents(settings_for(home))
    with httpx.stream("GET", f"{server.url}/admin/api/backup", timeout=60) as download:
        assert download.status_code == 200
        chunks = download.iter_bytes()
        first = next(chunks)
        assert first  # the archive is on its way, the writer waits on this slow reader
        assert list(home.glob(".backup-*")), "the database copy is being archived"
        _kill(server)

    _database_is_sound(home)
    assert contents(settings_for(home)) == expected
    again = _after_restart(home, tmp_path, killable)
    assert _stored(again) == before
    # the next backup removes the killed one's leftovers, and completes
    complete = httpx.get(f"{again.url}/admin/api/backup", timeout=60)
    assert complete.status_code == 200 and len(complete.content) > 4_000_000
    last: dict[str, Any] = httpx.get(f"{again.url}/admin/api/backup/last", timeout=10).json()
    assert last["last"]["how"] == "download"
    assert not list(home.glob(".backup-*"))
