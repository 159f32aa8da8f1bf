"""A storage quota per person: knowledge files and conversation images count against it, from
what is stored; what would pass it is refused (413, naming the quota, what is used and what is
allowed) before anything is stored; usage shows it to the person and to admins; an admin may
give one person more. Real uploads over HTTP, accounts on, the fake engine."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from iaforall.people.accounts import Accounts
from iaforall.store.conversations import Conversations, NewImage, NewMessage
from iaforall.store.database import Database
from tests.people.conftest import Shared, settings_with_accounts, shared_server
from tests.people.test_knowledge_sharing import key_for
from tests.vision.images import data_url

KB_API = "/v1/knowledge_bases"
CONVERSATIONS = "/web/api/conversations"
QUOTA = 1_000_000  # bytes: IAFORALL_MEMBER_STORAGE_MB=1


def noise_png(side: int = 600) -> bytes:
    """A grey picture of random pixels: its PNG does not compress (~side² bytes)."""
    out = io.BytesIO()
    Image.frombytes("L", (side, side), os.urandom(side * side)).save(out, "PNG")
    return out.getvalue()


def conversation_with(*pictures: bytes) -> dict[str, Any]:
    return {
        "format": "iaforall.conversation",
        "version": 1,
        "title": "album",
        "messages": [
            {"role": "user", "content": f"photo {i}", "images": [{"url": data_url(p)}]}
            for i, p in enumerate(pictures)
        ],
    }


@pytest.fixture
async def tight(tmp_path: Path) -> AsyncIterator[Shared]:
    """Members may keep 1 MB; admins have no limit (the default)."""
    settings = settings_with_accounts(tmp_path, member_storage_mb=1)
    async with shared_server(tmp_path, settings) as world:
        yield world


async def storage_of(client: httpx.AsyncClient, key: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/web/api/usage", headers=key)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["storage"]
    return found


async def test_files_and_images_count_against_the_storage_quota(tight: Shared) -> None:
    bob, ada = await key_for(tight, "bob"), await key_for(tight, "ada")
    c = tight.client
    assert await storage_of(c, bob) == {
        "used_bytes": 0, "knowledge_bytes": 0, "image_bytes": 0, "quota_bytes": QUOTA,
    }  # fmt: skip

    # A small knowledge file, then two large images: both kinds are counted.
    kb = (await c.post(KB_API, json={"name": "Notes"}, headers=bob)).json()["id"]
    note = b"# Notes\n\n" + b"The key is under the mat. " * 400
    sent = await c.post(f"{KB_API}/{kb}/files", files=[("file", ("n.md", note))], headers=bob)
    assert sent.status_code == 202, sent.text
    pictures = [noise_png(), noise_png(), noise_png()]
    assert all(340_000 < len(p) < 400_000 for p in pictures)
    first = await c.post(
        f"{CONVERSATIONS}/import", json=conversation_with(*pictures[:2]), headers=bob
    )
    assert first.status_code == 201, first.text[:300]
    used = await storage_of(c, bob)
    assert used["knowledge_bytes"] == len(note)
    assert used["image_bytes"] == len(pictures[0]) + len(pictures[1])
    assert used["used_bytes"] == used["knowledge_bytes"] + used["image_bytes"]

    # A third image would pass 1 MB: refused, naming the quota, and nothing is stored.
    third = await c.post(
        f"{CONVERSATIONS}/import", json=conversation_with(pictures[2]), headers=bob
    )
    assert third.status_code == 413, third.text[:300]
    error = third.json()["error"]
    assert error["code"] == "storage_quota_exceeded"
    assert "storage quota" in error["message"] and "1 MB allowed" in error["message"]
    assert f"you keep {used['used_bytes'] / 1e3:.1f} KB".replace(".0 KB", " KB") in error["message"]
    assert len((await c.get(CONVERSATIONS, headers=bob)).json()["data"]) == 1

    # The same for a knowledge file, and for an image sent in a reply.
    big = b"# Big\n\n" + b"words and more words " * 20_000  # 420 KB
    refused = await c.post(f"{KB_API}/{kb}/files", files=[("file", ("big.md", big))], headers=bob)
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["code"] == "storage_quota_exceeded"
    assert [
        f["filename"] for f in (await c.get(f"{KB_API}/{kb}/files", headers=bob)).json()["data"]
    ] == ["n.md"]
    assert list((tight.home / "knowledge").rglob("upload-*")) == []  # nothing left behind
    cid = first.json()["id"]
    reply = await c.post(
        f"{CONVERSATIONS}/{cid}/reply",
        json={"content": "and this?", "images": [{"url": data_url(pictures[2])}]},
        headers=bob,
    )
    assert reply.status_code == 413, reply.text[:300]
    assert "storage quota" in reply.json()["error"]["message"]
    assert (await storage_of(c, bob)) == used

    # Admins have no limit by default; the admin usage API shows everyone's storage.
    theirs = await c.post(f"{CONVERSATIONS}/import", json=conversation_with(*pictures), headers=ada)
    assert theirs.status_code == 201, theirs.text[:300]
    admin_view = (await c.get("/admin/api/usage", headers=ada)).json()["storage"]
    by_name = {row["user"]: row for row in admin_view}
    assert (
        by_name["bob"]["used_bytes"] == used["used_bytes"]
        and by_name["bob"]["quota_bytes"] == QUOTA
    )
    assert by_name["ada"]["image_bytes"] == sum(map(len, pictures))
    assert by_name["ada"]["quota_bytes"] is None
    assert (await c.get("/admin/api/usage", headers=bob)).status_code == 403

    # An admin gives Bob more: the refused import now fits.
    patched = await c.patch("/admin/api/users/bob", json={"quota": {"storage_mb": 2}}, headers=ada)
    assert patched.status_code == 200, patched.text
    assert patched.json()["effective_quota"]["storage_mb"] == 2
    again = await c.post(
        f"{CONVERSATIONS}/import", json=conversation_with(pictures[2]), headers=bob
    )
    assert again.status_code == 201, again.text[:300]
    assert (await storage_of(c, bob))["quota_bytes"] == 2 * QUOTA

    # Deleting frees what was kept.
    await c.delete(f"{CONVERSATIONS}/{cid}", headers=bob)
    assert (await storage_of(c, bob))["image_bytes"] == len(pictures[2])


async def test_a_full_quota_refuses_an_upload_before_reading_it(tight: Shared) -> None:
    bob = await key_for(tight, "bob")
    c = tight.client
    kb = (await c.post(KB_API, json={"name": "Notes"}, headers=bob)).json()["id"]
    # Bob's storage is full (written straight to the database, as a long use would leave it).
    database = Database(f"sqlite:///{tight.home / 'iaforall.db'}")
    try:
        bob_id = Accounts(database, session_hours=1).get_user("bob").id
        image = NewImage("image/png", "full.png", b"\x89PNG" + b"\0" * QUOTA)
        Conversations(database).create(bob_id, messages=[NewMessage("user", "", images=(image,))])
    finally:
        database.close()

    async def endless() -> AsyncIterator[bytes]:
        sent = 0
        while sent < 200_000_000:  # 200 MB, never all read
            yield b"x" * 1_000_000
            sent += 1_000_000

    boundary = "b0undary"
    headers = {**bob, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = await c.post(f"{KB_API}/{kb}/files", content=endless(), headers=headers)
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "storage_quota_exceeded" and "storage quota" in error["message"]
    assert "1 MB allowed" in error["message"]


async def test_uploads_at_once_cannot_share_the_last_bytes(tight: Shared) -> None:
    bob = await key_for(tight, "bob")
    c = tight.client
    pictures = [noise_png() for _ in range(6)]  # ~360 KB each: two fit in 1 MB, not three
    answers = await asyncio.gather(
        *(
            c.post(f"{CONVERSATIONS}/import", json=conversation_with(p), headers=bob)
            for p in pictures
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 201, 413, 413, 413, 413], codes
    assert (await storage_of(c, bob))["used_bytes"] <= QUOTA
