"""Images attached to the web app's messages, over real HTTP on the fake engine with the real
OCR: checked before anything is stored, read into labelled text for a text-only model, served
back, kept by an edit, and carried by export and import."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.web.test_web_api import API, new_conversation
from tests.conftest import FakeWorld
from tests.sse import events
from tests.vision.images import bomb_png, data_url, text_png

LABEL = "text read by OCR (rapidocr); the model cannot see the image itself"
NOTE = text_png("Meeting at noon", "Room twelve")


async def send(
    client: httpx.AsyncClient, cid: str, **body: Any
) -> tuple[httpx.Response, list[tuple[str, Any]]]:
    response = await client.post(f"{API}/{cid}/reply", json=body)
    return response, events(response.text) if response.status_code == 200 else []


async def test_an_image_is_read_for_the_model_and_stored_with_the_message(
    fake: FakeWorld,
) -> None:
    cid = (await new_conversation(fake.client))["id"]
    image = {"url": data_url(NOTE), "name": "note.png"}
    response, found = await send(fake.client, cid, content="When?", images=[image])
    assert response.status_code == 200, response.text
    sent = found[0][1]["user_message"]
    assert [(i["name"], i["media_type"], i["size"]) for i in sent["images"]] == [
        ("note.png", "image/png", len(NOTE))
    ]
    # The model is told what OCR read, under a label; it is never told it saw the image.
    given = fake.engine("tiny:latest").requests[-1].messages[-1]["content"]
    assert given == f"When?\n\n[Image 1: {LABEL}]\nMeeting at noon\nRoom twelve"

    served = await fake.client.get(f"{API}/{cid}/images/{sent['images'][0]['id']}")
    assert served.status_code == 200 and served.content == NOTE
    assert served.headers["content-type"] == "image/png"
    missing = await fake.client.get(f"{API}/{cid}/images/nope")
    assert missing.status_code == 404 and "no image" in missing.json()["error"]["message"]

    # "What the model sees" shows the same labelled text.
    prompt = (await fake.client.post(f"{API}/{cid}/prompt", json={})).json()["prompt"]
    assert f"[Image 1: {LABEL}]\nMeeting at noon" in prompt

    # An edit keeps the image (with a new id: the old message is gone), unless it brings others.
    response, found = await send(fake.client, cid, action="edit", content="Where?")
    kept = found[0][1]["user_message"]["images"]
    assert [i["name"] for i in kept] == ["note.png"] and kept[0]["id"] != sent["images"][0]["id"]
    assert "Meeting at noon" in fake.engine("tiny:latest").requests[-1].messages[-1]["content"]
    gone = await fake.client.get(f"{API}/{cid}/images/{sent['images'][0]['id']}")
    assert gone.status_code == 404


async def test_bad_images_are_refused_before_anything_is_stored(fake: FakeWorld) -> None:
    cid = (await new_conversation(fake.client))["id"]
    await send(fake.client, cid, content="first")
    cases = [
        ({"url": data_url(b"%PDF-1.7 not an image"), "name": "fake.png"}, "image"),
        ({"url": data_url(bomb_png()), "name": "bomb.png"}, "image"),
        ({"url": "https://127.0.0.1/secret.png", "name": "inside.png"}, "image"),
        ({"url": "data:image/png;base64,@@@", "name": "broken.png"}, "base64"),
    ]
    for image, word in cases:
        response, _ = await send(fake.client, cid, content="look", images=[image])
        assert response.status_code in (400, 413, 415), response.text
        error = response.json()["error"]
        assert word in error["message"].lower() and error["param"].startswith("images.0")
    many = [{"url": data_url(NOTE)}] * 9
    response, _ = await send(fake.client, cid, content="look", images=many)
    assert response.status_code == 400 and response.json()["error"]["code"] == "too_many_images"
    stored = (await fake.client.get(f"{API}/{cid}")).json()["messages"]
    assert [m["content"] for m in stored] == ["first", "first"]


async def test_export_and_import_carry_the_images(fake: FakeWorld) -> None:
    cid = (await new_conversation(fake.client))["id"]
    await send(fake.client, cid, content="", images=[{"url": data_url(NOTE), "name": "n.png"}])
    exported = (await fake.client.get(f"{API}/{cid}/export")).json()
    assert exported["messages"][0]["images"] == [{"url": data_url(NOTE), "name": "n.png"}]
    markdown = (await fake.client.get(f"{API}/{cid}/export?format=markdown&lang=fr")).text
    assert "*[Image: n.png]*" in markdown

    imported = (await fake.client.post(f"{API}/import", json=exported)).json()
    (image,) = imported["messages"][0]["images"]
    copy = await fake.client.get(f"{API}/{imported['id']}/images/{image['id']}")
    assert copy.content == NOTE

    exported["messages"][0]["images"][0]["url"] = data_url(b"GIF89a but not really")
    refused = await fake.client.post(f"{API}/import", json=exported)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == (
        "messages.0.images.0.url"
    )
