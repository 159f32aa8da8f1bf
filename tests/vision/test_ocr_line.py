"""An image read for someone takes its turn in the scheduler's one line, like any work: OCR uses
every core, so it waits while a generation runs (one model active at a time), then reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from iaforall.app import create_app
from iaforall.core.types import ModelId, UserId
from iaforall.scheduling.loop import Scheduler
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.vision.images import data_url, text_png


async def test_ocr_waits_in_line_for_the_running_generation(tmp_path: Path) -> None:
    stock_store(tmp_path)
    world = FakeWorld(client=httpx.AsyncClient())
    app = create_app(fake_settings(tmp_path, max_queue=4, queue_timeout=30), factory=world.factory)
    image = data_url(text_png("The lighthouse keeper"))
    body = {
        "model": "tiny",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What does it say?"},
                    {"type": "image_url", "image_url": {"url": image}},
                ],
            }
        ],
        "iaforall": {"return_prompt": True},
    }
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        scheduler: Scheduler = app.state.services.scheduler
        async with scheduler.slot(ModelId("other:latest"), UserId("someone")):
            asked = asyncio.create_task(client.post("/v1/chat/completions", json=body))
            for _ in range(200):
                if scheduler.queue_length:
                    break
                await asyncio.sleep(0.02)
            assert [(p.model, p.position) for p in scheduler.snapshot() if p.position] == [
                ("rapidocr", 1)
            ]
            assert not asked.done()
        r = await asked
    assert r.status_code == 200, r.text
    assert "The lighthouse keeper" in r.json()["iaforall"]["prompt"]
