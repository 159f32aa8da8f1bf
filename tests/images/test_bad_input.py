"""Bad requests get a 4xx in OpenAI's error shape before anything is drawn or counted."""

from __future__ import annotations

from typing import Any

import pytest

from tests.images.conftest import QUICK, DrawWorld

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"prompt": "   "}, 400, "invalid_request", "prompt"),
        ({"prompt": "a" * 1001}, 400, "prompt_too_long", "prompt"),
        ({"prompt": "a cat", "size": "1024x1024"}, 400, "unsupported_size", "size"),
        ({"prompt": "a cat", "size": "big"}, 400, "unsupported_size", "size"),
        ({"prompt": "a cat", "n": 4}, 400, "invalid_request", "n"),
        ({"prompt": "a cat", "n": 0}, 400, None, "n"),
        ({"prompt": "a cat", "steps": 51}, 400, "invalid_request", "steps"),
        ({"prompt": "a cat", "output_format": "gif"}, 400, None, "output_format"),
        ({"prompt": "a cat", "partial_images": 2}, 400, "invalid_request", "partial_images"),
        ({"prompt": "a cat", "seed": -1}, 400, None, "seed"),
        ({"prompt": "a cat", "model": "dall-e-3"}, 404, "model_not_found", "model"),
        ({"prompt": "a cat", "model": "tiny"}, 400, "model_not_image", "model"),
        ({"prompt": "a cat", "model": "tts-1"}, 400, "model_not_image", "model"),
        ({"model": QUICK}, 400, "missing_required_parameter", "prompt"),
    ],
)
async def test_bad_input_is_refused_in_openais_shape(
    drawing: DrawWorld, body: dict[str, Any], status: int, code: str | None, param: str
) -> None:
    asked = {"model": QUICK, **body}
    drawn_before = drawing.runtime(QUICK).drawn
    response = await drawing.client.post("/v1/images/generations", json=asked)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["message"]
    if code is not None:
        assert error["code"] == code
    assert drawing.runtime(QUICK).drawn == drawn_before  # nothing drawn


async def test_a_body_over_the_routes_limit_is_refused_while_it_arrives(
    drawing: DrawWorld,
) -> None:
    response = await drawing.client.post(
        "/v1/images/generations",
        content=b'{"prompt": "' + b"a" * 70_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
