"""A long conversation full of large images: each reply reads only the images the model is
given (the last `image_max_count`), not every image of the history, so its memory is bounded
by one request's images whatever the conversation holds. Real HTTP, a real SQLite file, the
fake engine as a vision model (a projector beside its file)."""

from __future__ import annotations

import os
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from iaforall.app import create_app
from iaforall.services import Services
from iaforall.store.conversations import Conversations, NewImage, NewMessage
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.models.gguf_files import write_gguf
from tests.sse import events
from tests.vision.images import png

API = "/web/api/conversations"
IMAGES = 40  # in the conversation: five times what one request may carry
SIDE = 300  # pixels: a noise image of 300 x 300 grey is ~90 KB of PNG that does not compress


def noise_png() -> bytes:
    rows = b"".join(b"\x00" + os.urandom(SIDE) for _ in range(SIDE))
    return png(SIDE, SIDE, zlib.compress(rows, 1))


@dataclass
class Seer:
    world: FakeWorld
    app: FastAPI
    loaded: list[int]  # bytes of the images each read of the store returned

    @property
    def services(self) -> Services:
        found: Services = self.app.state.services
        return found


@pytest.fixture
async def seer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Seer]:
    store = stock_store(tmp_path)
    info = store.add_local(write_gguf(tmp_path / "src" / "seer.gguf"), "seer")
    info.path.with_name(f"mmproj-{info.path.name}").write_bytes(b"GGUF")  # a vision model
    loaded: list[int] = []
    real = Conversations.images

    def counting(self: Conversations, owner: str, ids: Any) -> dict[str, NewImage]:
        found = real(self, owner, ids)
        loaded.append(sum(len(i.data) for i in found.values()))
        return found

    monkeypatch.setattr(Conversations, "images", counting)
    world = FakeWorld(client=httpx.AsyncClient())
    app = create_app(fake_settings(tmp_path), factory=world.factory)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        world.client = client
        yield Seer(world, app, loaded)


async def test_a_reply_reads_only_the_images_the_model_is_given(seer: Seer) -> None:
    pictures = [noise_png() for _ in range(IMAGES)]
    size = len(pictures[0])
    assert size > 80_000
    messages = []
    for i, picture in enumerate(pictures):
        image = NewImage("image/png", f"p{i}.png", picture)
        messages += [
            NewMessage("user", f"photo {i}", images=(image,)),
            NewMessage("assistant", "ok"),
        ]
    svc = seer.services
    cid = svc.conversations.create("local", title="album", model="seer", messages=messages).id
    most = svc.settings.images.image_max_count

    response = await seer.world.client.post(f"{API}/{cid}/reply", json={"content": "and?"})
    assert response.status_code == 200, response.text
    assert events(response.text)[0][0] == "start"

    # Bytes read from the store: the last `most` images, never the whole album.
    assert sum(seer.loaded) <= most * size * 1.1, (seer.loaded, size)
    # The model was given those images, the newest ones, and a note for each older one.
    given = seer.world.engine("seer:latest").requests[-1].messages
    urls = [
        p
        for m in given
        if isinstance(m["content"], list)
        for p in m["content"]
        if p["type"] == "image_url"
    ]
    notes = [
        p
        for m in given
        if isinstance(m["content"], list)
        for p in m["content"]
        if p["type"] == "text" and "left out" in p["text"]
    ]
    assert len(urls) == most and len(notes) == IMAGES - most
    first_shown = next(
        i
        for i, m in enumerate(given)
        if m["role"] == "user"
        and isinstance(m["content"], list)
        and any(p["type"] == "image_url" for p in m["content"])
    )
    assert given[first_shown]["content"][0]["text"] == f"photo {IMAGES - most}"

    # "What the model sees" is read the same way, within the same bound.
    seer.loaded.clear()
    shown = await seer.world.client.post(f"{API}/{cid}/prompt", json={})
    assert shown.status_code == 200, shown.text
    assert sum(seer.loaded) <= most * size * 1.1, (seer.loaded, size)
