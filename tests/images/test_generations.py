"""POST /v1/images/generations with the official `openai` SDK, on the tiny pipeline: sizes and
formats decoded with Pillow, n > 1, seeds, links, progress and partial images in a stream, the
published rules on the prompt, and /v1/models."""

from __future__ import annotations

import base64
import io

import numpy as np
import openai
import pytest
from PIL import Image

from tests.images.conftest import QUICK, DrawWorld

pytestmark = pytest.mark.timeout(60)


def picture(b64: str | None) -> Image.Image:
    assert b64 is not None
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


async def test_the_models_list_shows_image_models_with_their_kind(drawing: DrawWorld) -> None:
    listed = {m.id: m for m in (await drawing.sdk.models.list()).data}
    model = listed[f"{QUICK}:latest"]
    assert model.model_dump()["iaforall"] == {"kind": "image", "aliases": [QUICK]}
    one = (await drawing.client.get(f"/v1/models/{QUICK}")).json()
    assert one["iaforall"]["kind"] == "image"


@pytest.mark.parametrize(
    ("size", "fmt", "pillow"),
    [("512x512", "png", "PNG"), ("256x256", "jpeg", "JPEG"), ("384x512", "webp", "WEBP")],
)
async def test_a_picture_in_the_size_and_format_asked(
    drawing: DrawWorld, size: str, fmt: str, pillow: str
) -> None:
    result = await drawing.sdk.images.generate(
        model=QUICK,
        prompt="a lighthouse on a cliff at dusk",
        size=size,  # type: ignore[arg-type]
        output_format=fmt,  # type: ignore[arg-type]
        response_format="b64_json",
    )
    assert result.data is not None and len(result.data) == 1
    image = picture(result.data[0].b64_json)
    assert image.format == pillow
    assert f"{image.width}x{image.height}" == size and image.mode == "RGB"
    assert np.asarray(image).std() > 1  # a picture, not a blank
    assert (result.output_format, result.size) == (fmt, size)
    assert result.usage is not None and result.usage.output_tokens > 0


async def test_n_pictures_with_consecutive_seeds_and_the_same_seed_gives_the_same_picture(
    drawing: DrawWorld,
) -> None:
    asked = {"model": QUICK, "prompt": "a red bicycle", "size": "256x256"}
    response = await drawing.client.post(
        "/v1/images/generations", json={**asked, "n": 2, "seed": 7}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["iaforall"]["seeds"] == [7, 8]
    first, second = (np.asarray(picture(d["b64_json"])) for d in body["data"])
    assert not np.array_equal(first, second)
    assert response.headers["X-IAForAll-Queue-Position"] == "0"
    units = drawing.settings.drawing.draw_units // 4  # 256x256 is a quarter of 512x512
    assert body["usage"]["output_tokens"] == 2 * units

    again = await drawing.sdk.images.generate(
        **asked,  # type: ignore[arg-type]
        extra_body={"seed": 8},
    )
    assert again.data is not None
    assert np.array_equal(np.asarray(picture(again.data[0].b64_json)), second)


async def test_a_link_to_the_picture_for_its_owner(drawing: DrawWorld) -> None:
    result = await drawing.sdk.images.generate(
        model=QUICK, prompt="a kite", size="256x256", response_format="url"
    )
    assert result.data is not None and result.data[0].url is not None
    url = result.data[0].url
    assert url.startswith(drawing.url)
    fetched = await drawing.client.get(url)
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(fetched.content)).size == (256, 256)
    missing = await drawing.client.get("/v1/images/files/not-a-picture")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_a_stream_says_each_step_then_partial_images_then_the_picture(
    drawing: DrawWorld,
) -> None:
    stream = await drawing.sdk.images.generate(
        model=QUICK,
        prompt="a snowy mountain",
        size="256x256",
        stream=True,
        partial_images=2,
        extra_body={"steps": 4, "seed": 3},
    )
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds.count("image_generation.completed") == 1 and kinds[-1].endswith("completed")
    progress = [e.model_dump() for e in events if e.type == "iaforall.image_progress"]
    steps = [(p["step"], p["steps"]) for p in progress]
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    partials = [e for e in events if e.type == "image_generation.partial_image"]
    assert [p.partial_image_index for p in partials] == [0, 1]  # type: ignore[union-attr]
    for p in partials:
        assert picture(p.b64_json).size == (256, 256)
    done = events[-1]
    assert picture(done.b64_json).size == (256, 256)
    assert done.model_dump()["iaforall"]["seed"] == 3


async def test_the_published_rules_read_the_prompt_and_their_decisions_are_shown(
    drawing: DrawWorld,
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as refused:
        await drawing.sdk.images.generate(model=QUICK, prompt="a green dragon", size="256x256")
    assert refused.value.code == "policy_blocked"
    assert "no-dragons" in refused.value.message
    asked = {"model": QUICK, "prompt": "a sleeping cat", "size": "256x256"}
    warned = await drawing.client.post("/v1/images/generations", json=asked)
    assert warned.status_code == 200
    (decision,) = warned.json()["iaforall"]["decisions"]
    assert (decision["rule"], decision["action"]) == ("cats-noted", "warn")
