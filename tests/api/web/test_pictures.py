"""Pictures drawn in the web app, kept in their conversation (POST …/pictures), over real HTTP
with accounts on and the fake chat engine: stored at the end, served back, never given to the
chat model, carried by export and import; bad input refused with nothing stored; counted in
the person's storage quota. One server for the module."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from iaforall.settings import ImageSettings
from tests.people.conftest import Shared, settings_with_accounts, shared_server
from tests.people.test_knowledge_sharing import key_for
from tests.people.test_storage_quota import noise_png
from tests.sse import events
from tests.vision.images import bomb_png, data_url

API = "/web/api/conversations"
QUOTA = 1_000_000  # bytes: IAFORALL_MEMBER_STORAGE_MB=1
MOST = 400_000  # IAFORALL_IMAGE_MAX_BYTES here: a large picture is cheap to send


def png(colour: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(out, "PNG")
    return out.getvalue()


PICTURE = png()


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    home = tmp_path_factory.mktemp("pictures")
    settings = settings_with_accounts(home, member_storage_mb=1)
    settings = settings.model_copy(update={"images": ImageSettings(image_max_bytes=MOST)})
    async with shared_server(home, settings) as shared:
        yield shared


@pytest.fixture(scope="module")
async def bob(world: Shared) -> dict[str, str]:
    return await key_for(world, "bob")


async def new_conversation(world: Shared, key: dict[str, str]) -> str:
    created = await world.client.post(API, json={"model": "tiny"}, headers=key)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def body(prompt: str = "a red kite over the sea", image: bytes = PICTURE, **more: Any) -> Any:
    return {
        "prompt": prompt,
        "model": "tiny-draw",
        "image": {"url": data_url(image), "name": "image-7.png"},
        **more,
    }


async def keep(world: Shared, key: dict[str, str], cid: str, sent: Any) -> httpx.Response:
    return await world.client.post(f"{API}/{cid}/pictures", json=sent, headers=key)


async def test_a_picture_is_kept_served_left_out_of_the_chat_and_exported(
    world: Shared, bob: dict[str, str]
) -> None:
    c, cid = world.client, await new_conversation(world, bob)
    kept = await keep(world, bob, cid, body())
    assert kept.status_code == 201, kept.text
    message = kept.json()
    assert (message["role"], message["content"], message["model"]) == (
        "picture", "a red kite over the sea", "tiny-draw",
    )  # fmt: skip
    (image,) = message["images"]
    assert (image["name"], image["media_type"], image["size"]) == (
        "image-7.png", "image/png", len(PICTURE),
    )  # fmt: skip
    served = await c.get(f"{API}/{cid}/images/{image['id']}", headers=bob)
    assert served.status_code == 200 and served.content == PICTURE
    found = (await c.get(f"{API}/{cid}", headers=bob)).json()
    assert found["title"] == "a red kite over the sea"  # from the prompt: it had none
    assert [m["id"] for m in found["messages"]] == [message["id"]]

    # The chat model did not draw it: it is not in what the model is given, nor shown so.
    replied = await c.post(f"{API}/{cid}/reply", json={"content": "Bonjour"}, headers=bob)
    assert events(replied.text)[-2][0] == "done"
    assert world.engine("tiny:latest").requests[-1].messages == (
        {"role": "user", "content": "Bonjour"},
    )
    prompt = (await c.post(f"{API}/{cid}/prompt", json={}, headers=bob)).json()["prompt"]
    assert "kite" not in prompt and "Bonjour" in prompt

    # A second one goes at the end, after the answer.
    second = await keep(world, bob, cid, body("a blue kite", png("navy")))
    roles = [m["role"] for m in (await c.get(f"{API}/{cid}", headers=bob)).json()["messages"]]
    assert second.status_code == 201 and roles == ["picture", "user", "assistant", "picture"]

    exported = (await c.get(f"{API}/{cid}/export", headers=bob)).json()
    assert exported["version"] == 1
    assert exported["messages"][0] == {
        **exported["messages"][0],
        "role": "picture",
        "content": "a red kite over the sea",
        "model": "tiny-draw",
        "images": [{"url": data_url(PICTURE), "name": "image-7.png"}],
    }
    imported = await c.post(f"{API}/import", json=exported, headers=bob)
    assert imported.status_code == 201, imported.text
    first = imported.json()["messages"][0]
    assert (first["role"], first["content"]) == ("picture", "a red kite over the sea")
    copy = await c.get(
        f"{API}/{imported.json()['id']}/images/{first['images'][0]['id']}", headers=bob
    )
    assert copy.content == PICTURE

    for lang, heading in (
        ("en", "## Picture (tiny-draw)"),
        ("fr", "## Image dessinée (tiny-draw)"),
    ):
        markdown = (
            await c.get(f"{API}/{cid}/export?format=markdown&lang={lang}", headers=bob)
        ).text
        assert f"{heading}\n\na red kite over the sea\n\n*[Image: image-7.png]*" in markdown


async def test_bad_input_is_refused_and_nothing_is_stored(
    world: Shared, bob: dict[str, str]
) -> None:
    c, cid = world.client, await new_conversation(world, bob)
    ada = await key_for(world, "ada")
    theirs = await new_conversation(world, ada)
    cases: list[tuple[str, Any, int, str]] = [
        (cid, body(image=b"%PDF-1.7 not an image"), 400, "invalid_image"),
        (cid, body(image=bomb_png()), 400, "image_too_large"),
        (cid, body(image=noise_png(700)), 400, "image_too_large"),  # past IMAGE_MAX_BYTES
        (cid, body(prompt="   "), 400, "invalid_request"),
        (cid, body(prompt="kite " * 201), 400, "prompt_too_long"),  # > 1000 characters
        (cid, {**body(), "image": {"url": "https://example.com/k.png"}}, 400, ""),
        (cid, body(extra="field"), 400, ""),
        (cid, {"prompt": "a kite"}, 400, ""),
        ("nope", body(), 404, "not_found"),
        (theirs, body(), 404, "not_found"),  # someone else's: as if it did not exist
    ]
    for where, sent, status, code in cases:
        response = await keep(world, bob, where, sent)
        assert response.status_code == status, (sent.get("prompt"), response.text)
        error = response.json()["error"]
        assert error["message"] and (not code or error["code"] == code), error
    for key, conversation in ((bob, cid), (ada, theirs)):
        found = (await c.get(f"{API}/{conversation}", headers=key)).json()
        assert found["messages"] == [] and found["title"] == ""


async def test_pictures_count_against_the_storage_quota(world: Shared, bob: dict[str, str]) -> None:
    c = world.client
    before = (await c.get("/web/api/usage", headers=bob)).json()["storage"]["image_bytes"]
    cid = await new_conversation(world, bob)
    large = noise_png(600)  # ~360 kB each: the third passes the 1 MB quota
    sizes = []
    for _ in range(4):
        response = await keep(world, bob, cid, body(image=large))
        if response.status_code != 201:
            break
        sizes.append(len(large))
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "storage_quota_exceeded"
    storage = (await c.get("/web/api/usage", headers=bob)).json()["storage"]
    assert storage["image_bytes"] == before + sum(sizes) and storage["used_bytes"] <= QUOTA
    stored = (await c.get(f"{API}/{cid}", headers=bob)).json()["messages"]
    assert len(stored) == len(sizes) >= 1
