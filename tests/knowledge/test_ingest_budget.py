"""One document's reading has a time budget: past it, the file fails with why (as its owner sees
it through the API), the work really stops (the child process reading it is killed), and the
next file is read. Over real HTTP, with the real parsers; the model engine is the fake one."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from iaforall.app import create_app
from iaforall.knowledge.errors import DocumentRefused
from iaforall.knowledge.limits import DocumentLimits
from iaforall.knowledge.reader_process import DocumentReader
from iaforall.settings import KnowledgeSettings
from tests.api.test_knowledge_api import API, NOTES, new_base, settled, upload
from tests.conftest import FakeWorld, fake_settings, served, stock_store

BUDGET = 0.5  # seconds; the FAQ below takes ~9 s to parse on this machine's cores
FAQ = ("## Question?\nAnswer.\n" * 220_000).encode()  # 4.6 MB of Markdown: large, not malformed


def readers() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == "iaforall-document-reader"]


@asynccontextmanager
async def server(home: Path, seconds: float) -> AsyncIterator[httpx.AsyncClient]:
    stock_store(home)
    fake = FakeWorld(client=httpx.AsyncClient())
    settings = fake_settings(home)
    settings.knowledge = KnowledgeSettings(knowledge_ingest_seconds=seconds)
    app = create_app(settings, factory=fake.factory)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        fake.client = client
        yield client


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with server(tmp_path, BUDGET) as client:
        yield client


async def test_a_file_over_the_budget_fails_with_why_and_the_next_one_is_read(
    client: httpx.AsyncClient,
) -> None:
    kb = (await new_base(client))["id"]
    slow, quick = (await upload(client, kb, ("faq.md", FAQ), ("notes.md", NOTES))).json()["data"]
    failed = await settled(client, kb, slow["id"])
    assert failed["status"] == "failed" and failed["chunks"] == 0
    assert failed["error"]["code"] == "reading_too_long"
    assert f"longer than the {BUDGET:g} seconds one file is given" in failed["error"]["message"]
    ready = await settled(client, kb, quick["id"])
    assert ready["status"] == "ready" and ready["chunks"] > 0
    # The slow file's reader was killed at the deadline, not left parsing: the one alive now
    # (if any) was started for the next file.
    [reader] = readers()
    assert reader.pid is not None
    found = (await client.post(f"{API}/{kb}/search", json={"query": "library"})).json()
    assert found["data"] and {hit["document"] for hit in found["data"]} == {"notes.md"}


async def test_the_budget_covers_embedding_too(tmp_path: Path) -> None:
    """A file read at once whose passages take longer to embed than the budget fails the same
    way (checked between batches of passages), with none of them stored."""
    many = "".join(f"## Question {i}\nAnswer number {i}.\n" for i in range(3000)).encode()
    async with server(tmp_path, 2.0) as client:
        kb = (await new_base(client))["id"]
        slow, quick = (await upload(client, kb, ("many.md", many), ("notes.md", NOTES))).json()[
            "data"
        ]
        failed = await settled(client, kb, slow["id"])
        assert failed["status"] == "failed" and failed["chunks"] == 0
        assert failed["error"]["code"] == "reading_too_long"
        assert failed["format"] == "markdown"  # it was read: the embedding ran out of time
        assert (await settled(client, kb, quick["id"]))["status"] == "ready"


async def test_the_reader_is_killed_at_the_deadline_and_a_crash_is_a_reason(
    tmp_path: Path,
) -> None:
    faq = tmp_path / "faq.md"
    faq.write_bytes(FAQ)
    notes = tmp_path / "notes.md"
    notes.write_bytes(NOTES)
    reader = DocumentReader(DocumentLimits(), BUDGET)
    try:
        assert (await reader.read(notes, "notes.md")).sections
        [first] = readers()
        with pytest.raises(DocumentRefused) as over:
            await reader.read(faq, "faq.md")
        assert (over.value.status, over.value.code) == (413, "reading_too_long")
        assert not first.is_alive() and readers() == []  # killed, not abandoned
        assert (await reader.read(notes, "notes.md")).sections  # a new reader for the next
        [second] = readers()
        assert second.pid is not None
        os.kill(second.pid, signal.SIGKILL)  # as the kernel's OOM killer would
        second.join()
        assert (await reader.read(notes, "notes.md")).sections  # dead between files: restarted
    finally:
        reader.close()
    assert readers() == []


async def test_a_reader_that_dies_while_reading_fails_the_file_with_why(tmp_path: Path) -> None:
    faq = tmp_path / "faq.md"
    faq.write_bytes(FAQ)
    notes = tmp_path / "notes.md"
    notes.write_bytes(NOTES)
    reader = DocumentReader(DocumentLimits(), seconds=600)
    try:
        await reader.read(notes, "notes.md")
        [child] = readers()
        reading = asyncio.create_task(reader.read(faq, "faq.md"))
        await asyncio.sleep(1.0)  # well inside the ~9 s the FAQ takes
        assert child.pid is not None and not reading.done()
        os.kill(child.pid, signal.SIGKILL)  # as the kernel's OOM killer would
        with pytest.raises(DocumentRefused) as stopped:
            await reading
        assert (stopped.value.status, stopped.value.code) == (422, "reader_stopped")
        assert "killed, most often because the system ran out of memory" in stopped.value.message
        assert (await reader.read(notes, "notes.md")).sections
    finally:
        reader.close()
