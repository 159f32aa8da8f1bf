"""Bad images and refused URLs: each a clear 400 in the OpenAI shape, the server fine after."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import FakeWorld
from tests.vision.images import bomb_png, data_url, huge_header_png, text_png

CHAT = "/v1/chat/completions"


def with_image(url: str) -> dict[str, Any]:
    image = {"type": "image_url", "image_url": {"url": url}}
    content = [{"type": "text", "text": "Read this."}, image]
    return {"model": "tiny", "messages": [{"role": "user", "content": content}]}


@pytest.mark.parametrize(
    ("url", "code", "words"),
    [
        (data_url(huge_header_png()), "image_too_large", "50.0 megapixels"),
        (data_url(bomb_png()), "image_too_large", "36.0 megapixels"),
        (data_url(b"this is not a picture at all"), "invalid_image", "not a PNG, JPEG"),
        (data_url(text_png("cut")[:300]), "invalid_image", "truncated"),
        (data_url(b"GIF89a", mime="text/plain"), "invalid_image", "not an image type"),
        ("data:image/png;base64,@@@", "invalid_image", "not valid base64"),
        ("http://127.0.0.1/cat.png", "image_url_refused", "non-public"),
        ("http://169.254.169.254/latest/meta-data/", "image_url_refused", "non-public"),
        ("http://localhost:8080/v1/models", "image_url_refused", "non-public"),
        ("http://[::ffff:10.0.0.1]/x.png", "image_url_refused", "non-public"),
        ("file:///etc/passwd", "image_url_refused", "'file:' is refused"),
        ("ftp://example.org/a.png", "image_url_refused", "'ftp:' is refused"),
    ],
)
async def test_refused_with_a_clear_400(fake: FakeWorld, url: str, code: str, words: str) -> None:
    r = await fake.client.post(CHAT, json=with_image(url))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["type"] == "invalid_request_error"
    assert words in error["message"]
    assert error["param"] == "messages.0.content.1.image_url.url"
    ok = await fake.client.post(
        CHAT, json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert ok.status_code == 200


async def test_other_part_types_still_refused(fake: FakeWorld) -> None:
    body = with_image("data:image/png;base64,")
    body["messages"][0]["content"][1] = {"type": "input_audio", "input_audio": {"data": ""}}
    r = await fake.client.post(CHAT, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "unsupported_content"
