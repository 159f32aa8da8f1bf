"""A request body past the limit is refused with a 413 before it is held in memory."""

from __future__ import annotations

from pathlib import Path

import httpx

from iaforall.app import create_app
from iaforall.settings import ImageSettings
from tests.conftest import FakeWorld, fake_settings, served, stock_store


async def test_an_oversized_chat_body_is_a_413(tmp_path: Path) -> None:
    stock_store(tmp_path)
    world = FakeWorld(client=httpx.AsyncClient())
    settings = fake_settings(tmp_path).model_copy(
        update={"images": ImageSettings(image_max_count=1, image_max_bytes=1000)}
    )
    app = create_app(settings, factory=world.factory)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        text = "x" * 16_500_000
        body = {"model": "tiny", "messages": [{"role": "user", "content": text}]}
        for path in ("/v1/chat/completions", "/v1/completions"):
            payload = body if "chat" in path else {"model": "tiny", "prompt": text}
            refused = await client.post(path, json=payload)
            assert refused.status_code == 413, path
            assert refused.json()["error"]["code"] == "payload_too_large"
        ok = await client.post(
            "/v1/chat/completions",
            json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert ok.status_code == 200
