"""A model with a vision projector beside it is given the image itself, not OCR text."""

from __future__ import annotations

from pathlib import Path

from iaforall.core.types import ChatRequest
from iaforall.models.store import ModelStore
from tests.conftest import FakeWorld
from tests.vision.images import data_url, text_png


async def test_image_parts_go_to_a_model_with_a_projector(fake: FakeWorld, tmp_path: Path) -> None:
    info = ModelStore(tmp_path, install_missing=False).get("tiny")
    assert info is not None
    (info.path.with_name(f"mmproj-{info.path.name}")).write_bytes(b"GGUF")
    image = {"type": "image_url", "image_url": {"url": data_url(text_png("hi"))}}
    content = [{"type": "text", "text": "What is this?"}, image]
    r = await fake.client.post(
        "/v1/chat/completions",
        json={"model": "tiny", "messages": [{"role": "user", "content": content}]},
    )
    assert r.status_code == 200, r.text
    engine = fake.engine("tiny:latest")
    assert engine.capabilities.vision
    request = engine.requests[-1]
    assert isinstance(request, ChatRequest)
    assert request.messages[0]["content"] == content
