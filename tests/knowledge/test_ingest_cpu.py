"""Reading a document takes its turn in the scheduler's line within the CPU budget: on two cores,
while a chat generation holds both, the upload waits (seen in the live queue as the document
reader, on behalf of the base's owner), then is read once the chat ends."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx

from iaforall.app import create_app
from iaforall.core.types import LOCAL_USER, ModelId, UserId
from iaforall.knowledge.ingest import READER
from iaforall.settings import EngineSettings
from tests.api.test_knowledge_api import API, NOTES, new_base, settled, upload
from tests.conftest import FakeWorld, fake_settings, served, stock_store


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
