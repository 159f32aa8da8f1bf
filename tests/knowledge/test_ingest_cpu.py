"""Reading a document takes its turn in the scheduler's line within the CPU budget: on two cores,
while a chat generation holds both, the upload waits (seen in the live queue as the document
reader, on behalf of the base's owner), then is read once the chat ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from iaforall.app import create_app
from iaforall.core.types import LOCAL_USER, ModelId, UserId
from iaforall.knowledge.ingest import READER
from iaforall.scheduling.loop import Ticket
from iaforall.settings import EngineSettings
from tests.api.test_knowledge_api import API, NOTES, new_base, settled, upload
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.knowledge.documents import text_pdf


async def test_a_document_is_read_when_its_threads_fit(tmp_path: Path) -> None:
    stock_store(tmp_path)
    fake = FakeWorld(client=httpx.AsyncClient())
    settings = fake_settings(tmp_path, cpu_cores=2, queue_timeout=30)
    settings.engine = EngineSettings(parallel=1, context_length=2048, keep_alive=300, threads=2)
    app = create_app(settings, factory=fake.factory)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        scheduler = app.state.services.scheduler
        chat = contextlib.AsyncExitStack()
        await chat.enter_async_context(scheduler.slot(ModelId("tiny:latest"), UserId("someone")))
        kb = (await new_base(client))["id"]
        [doc] = (await upload(client, kb, ("notes.md", NOTES))).json()["data"]
        for _ in range(200):
            if any(p.model == READER and p.position > 0 for p in scheduler.snapshot()):
                break
            await asyncio.sleep(0.02)
        [waiting] = [p for p in scheduler.snapshot() if p.model == READER]
        assert waiting.user == LOCAL_USER and waiting.position == 1
        found = (await client.get(f"{API}/{kb}/files/{doc['id']}")).json()
        assert found["status"] == "reading"
        await chat.aclose()  # the chat ends: both cores are free
        ready = await settled(client, kb, doc["id"])
        assert ready["status"] == "ready" and ready["chunks"] > 0
        assert scheduler.cpu().in_use == 0


@asynccontextmanager
async def reader_turns(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[list[tuple[int, bool]]]:
    """Each turn the document reader gets in the line: the threads it holds, and whether its
    child process had already started (else its start, seconds of imports, held them)."""
    services = app.state.services
    scheduler, reader = services.scheduler, services.knowledge.ingestion.reader
    real_slot = scheduler.slot
    turns: list[tuple[int, bool]] = []

    @asynccontextmanager
    async def slot(model: ModelId, user: UserId, **kwargs: Any) -> AsyncIterator[Ticket]:
        async with real_slot(model, user, **kwargs) as ticket:
            if model == READER:
                turns.append((ticket.threads, reader.started))
            yield ticket

    monkeypatch.setattr(scheduler, "slot", slot)
    yield turns


async def test_small_uploads_leave_the_cores_to_a_chat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Markdown files (no OCR) are read on one thread, the reader's child started outside
    its turn: a chat asked right after answers well within the queue timeout, and the budget is
    empty once they are ready (the reader held both cores for seconds while its child started,
    and the chat got 429 server_busy)."""
    stock_store(tmp_path)
    fake = FakeWorld(client=httpx.AsyncClient())
    settings = fake_settings(tmp_path, cpu_cores=2, max_queue=4, queue_timeout=5)
    settings.engine = EngineSettings(parallel=1, context_length=2048, keep_alive=300, threads=2)
    app = create_app(settings, factory=fake.factory)
    async with (
        served(app) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        reader_turns(app, monkeypatch) as turns,
    ):
        kb = (await new_base(client))["id"]
        docs = []
        for name, text in (("a.md", NOTES), ("b.md", b"# Harbour\n\nOpen at dawn.")):
            docs += (await upload(client, kb, (name, text))).json()["data"]
        chat = await client.post("/v1/responses", json={"model": "tiny", "input": "hi"})
        assert chat.status_code == 200, chat.text
        for doc in docs:
            assert (await settled(client, kb, doc["id"]))["status"] == "ready"
        assert turns == [(1, True), (1, True)]
        assert app.state.services.scheduler.cpu().held == {}


async def test_a_pdf_holds_the_ocr_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PDF may have scanned pages: reading it holds the OCR's threads."""
    stock_store(tmp_path)
    fake = FakeWorld(client=httpx.AsyncClient())
    settings = fake_settings(tmp_path, cpu_cores=2)
    settings.engine = EngineSettings(parallel=1, context_length=2048, keep_alive=300, threads=2)
    app = create_app(settings, factory=fake.factory)
    pdf = text_pdf(tmp_path / "harbour.pdf")
    async with (
        served(app) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        reader_turns(app, monkeypatch) as turns,
    ):
        kb = (await new_base(client))["id"]
        [doc] = (await upload(client, kb, ("harbour.pdf", pdf.read_bytes()))).json()["data"]
        assert (await settled(client, kb, doc["id"]))["status"] == "ready"
        assert turns == [(2, True)]
