"""Knowledge bases over real HTTP: files uploaded, read in the background (real parsers, real
encoder, real SQLite index), searched, and given to the model with citations. The chat model is
the fake engine (what it is given is the point here); tests/integration has the real one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader, PdfWriter

from iaforall.app import create_app
from iaforall.settings import KnowledgeSettings
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.knowledge.documents import FRENCH_2, text_pdf
from tests.sse import events
from tests.vision.images import text_png

API = "/v1/knowledge_bases"
NOTES = b"""# Garden club

## Watering

Tomatoes are watered every morning at seven, never in the evening.

## Meetings

The club meets on the first Tuesday of each month in the old library.
"""


@dataclass
class World:
    fake: FakeWorld
    client: httpx.AsyncClient
    home: Path


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    stock_store(tmp_path)
    fake = FakeWorld(client=httpx.AsyncClient())
    settings = fake_settings(tmp_path)
    settings.knowledge = KnowledgeSettings(document_max_mb=1, chunk_chars=300, chunk_overlap=50)
    app = create_app(settings, factory=fake.factory)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        fake.client = client
        yield World(fake, client, tmp_path)


async def new_base(client: httpx.AsyncClient, name: str = "Notes") -> dict[str, Any]:
    response = await client.post(API, json={"name": name})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def upload(client: httpx.AsyncClient, kb: str, *files: tuple[str, bytes]) -> httpx.Response:
    return await client.post(f"{API}/{kb}/files", files=[("file", f) for f in files])


async def settled(client: httpx.AsyncClient, kb: str, file_id: str) -> dict[str, Any]:
    """The file once read (or refused), following its progress."""
    for _ in range(300):
        found: dict[str, Any] = (await client.get(f"{API}/{kb}/files/{file_id}")).json()
        assert 0.0 <= found["progress"] <= 1.0
        if found["status"] in ("ready", "failed"):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"still {found['status']}")


async def test_files_are_read_searched_and_cited(world: World, tmp_path: Path) -> None:
    client = world.client
    kb = (await new_base(client))["id"]
    pdf = text_pdf(tmp_path / "statuts.pdf").read_bytes()
    response = await upload(client, kb, ("notes.md", NOTES), ("statuts.pdf", pdf))
    assert response.status_code == 202, response.text
    notes, statutes = response.json()["data"]
    assert notes["status"] == "queued" and notes["filename"] == "notes.md"
    notes, statutes = [await settled(client, kb, f["id"]) for f in (notes, statutes)]
    assert notes["status"] == statutes["status"] == "ready", (notes, statutes)
    assert statutes["pages"] == 3 and statutes["format"] == "pdf" and notes["chunks"] >= 2

    # The same bytes again cost nothing: the file already there is returned.
    again = (await upload(client, kb, ("copy-of-notes.md", NOTES))).json()["data"][0]
    assert again["duplicate"] is True and again["id"] == notes["id"]
    listed = (await client.get(f"{API}/{kb}/files")).json()["data"]
    assert len(listed) == 2
    base = (await client.get(f"{API}/{kb}")).json()
    assert base["file_counts"] == {"total": 2} and base["access"] == "owner"

    found = await client.post(f"{API}/{kb}/search", json={"query": "When are tomatoes watered?"})
    best = found.json()["data"][0]
    assert best["document"] == "notes.md" and "seven" in best["text"]
    assert best["location"] == "Garden club > Watering" and best["number"] == 1
    french = await client.post(
        f"{API}/{kb}/search", json={"query": "Quand payer les cotisations ?", "k": 1}
    )
    (cited,) = french.json()["data"]
    assert cited["document"] == "statuts.pdf" and cited["page"] == 2
    assert FRENCH_2 in cited["text"]

    # A chat that asks for the base: the model gets the numbered passages before the question,
    # and the answer lists them as its citations.
    answer = await client.post(
        "/v1/chat/completions",
        json={
            "model": "tiny",
            "messages": [{"role": "user", "content": "When are tomatoes watered?"}],
            "iaforall": {"knowledge": {"bases": [kb], "k": 2}, "return_prompt": True},
        },
    )
    assert answer.status_code == 200, answer.text
    given = world.fake.engine("tiny:latest").requests[-1].messages[-1]["content"]
    assert given.startswith("[Sources found in the knowledge bases")
    assert "[1] notes.md, Garden club > Watering:\n" in given
    assert given.endswith("[Question]\nWhen are tomatoes watered?")
    citations = answer.json()["iaforall"]["citations"]
    assert [c["number"] for c in citations] == [1, 2] and citations[0]["document"] == "notes.md"
    assert "[1] notes.md" in answer.json()["iaforall"]["prompt"]

    # A single file instead of a whole base: only its passages are given.
    single = await client.post(
        "/v1/chat/completions",
        json={
            "model": "tiny",
            "messages": [{"role": "user", "content": "When are tomatoes watered?"}],
            "iaforall": {"knowledge": {"files": [statutes["id"]], "k": 2}},
        },
    )
    cited = single.json()["iaforall"]["citations"]
    assert [c["number"] for c in cited] == [1, 2]
    assert {c["document"] for c in cited} == {"statuts.pdf"}
    unknown = await client.post(
        "/v1/chat/completions",
        json={
            "model": "tiny",
            "messages": [{"role": "user", "content": "hi"}],
            "iaforall": {"knowledge": {"files": ["nope"]}},
        },
    )
    assert unknown.status_code == 404 and "no document 'nope'" in unknown.text

    original = await client.get(f"{API}/{kb}/files/{statutes['id']}/content")
    assert original.content == pdf and original.headers["content-type"] == "application/pdf"

    # Deleting a file removes its passages from search; deleting the base removes it all.
    assert (await client.delete(f"{API}/{kb}/files/{notes['id']}")).status_code == 204
    after = await client.post(f"{API}/{kb}/search", json={"query": "tomatoes watered"})
    assert all(c["document"] != "notes.md" for c in after.json()["data"])
    assert (await client.delete(f"{API}/{kb}")).status_code == 204
    assert (await client.get(f"{API}/{kb}")).status_code == 404
    assert not (world.home / "knowledge" / kb).exists()


async def test_bad_files_get_clear_errors_and_nothing_half_stored(
    world: World, tmp_path: Path
) -> None:
    client = world.client
    kb = (await new_base(client))["id"]
    good = (await upload(client, kb, ("notes.md", NOTES))).json()["data"][0]
    await settled(client, kb, good["id"])

    # Refused at once, before anything is stored: a lying name, an empty file, too large.
    cases = [
        (("report.pdf", text_png("a picture")), 415, "unsupported_document_type"),
        (("empty.txt", b""), 400, "empty_document"),
        (("big.txt", b"word " * 250_000), 413, "file_too_large"),
    ]
    for file, status, code in cases:
        response = await upload(client, kb, ("fine.md", b"# Fine\n\nfine"), file)
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    assert [f["filename"] for f in (await client.get(f"{API}/{kb}/files")).json()["data"]] == [
        "notes.md"
    ]
    assert list((world.home / "knowledge" / "incoming").iterdir()) == []

    # Refused when read (in the background): a password-protected PDF is `failed`, with why.
    writer = PdfWriter(clone_from=PdfReader(text_pdf(tmp_path / "a.pdf")))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    locked = tmp_path / "locked.pdf"
    writer.write(locked)
    queued = (await upload(client, kb, ("locked.pdf", locked.read_bytes()))).json()["data"][0]
    failed = await settled(client, kb, queued["id"])
    assert failed["status"] == "failed" and failed["chunks"] == 0
    assert failed["error"]["code"] == "encrypted_document"
    assert "password" in failed["error"]["message"]

    for method, path, body, status in [
        ("post", API, {"name": ""}, 400),
        ("post", API, {"name": "x", "embedding_model": "nope"}, 404),
        ("get", f"{API}/missing", None, 404),
        ("post", f"{API}/{kb}/search", {"query": ""}, 400),
        ("post", f"{API}/{kb}/search", {"query": "x", "mode": "magic"}, 400),
        ("post", f"{API}/{kb}/files", None, 400),  # not multipart
        ("put", f"{API}/{kb}/shares/bob", None, 400),  # no accounts: nobody to share with
    ]:
        response = await client.request(method, path, json=body)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"]["message"]
    chat = await client.post(
        "/v1/chat/completions",
        json={
            "model": "tiny",
            "messages": [{"role": "user", "content": "hi"}],
            "iaforall": {"knowledge": {"bases": ["missing"]}},
        },
    )
    assert chat.status_code == 404 and "knowledge base" in chat.json()["error"]["message"]


async def test_a_web_conversation_answers_from_its_bases_and_keeps_the_citations(
    world: World,
) -> None:
    client = world.client
    kb = (await new_base(client))["id"]
    file = (await upload(client, kb, ("notes.md", NOTES))).json()["data"][0]
    await settled(client, kb, file["id"])
    web = "/web/api/conversations"
    missing = await client.post(web, json={"model": "tiny", "knowledge": ["nope"]})
    assert missing.status_code == 404
    conversation = (await client.post(web, json={"model": "tiny", "knowledge": [kb]})).json()
    assert conversation["knowledge"] == [kb]
    cid = conversation["id"]

    prompt = await client.post(f"{web}/{cid}/prompt", json={"draft": "Where does the club meet?"})
    assert "[1] notes.md, Garden club > Meetings:" in prompt.json()["prompt"]

    reply = await client.post(f"{web}/{cid}/reply", json={"content": "Where does the club meet?"})
    found = events(reply.text)
    start = found[0][1]
    assert start["citations"][0]["document"] == "notes.md"
    assert "old library" in start["citations"][0]["text"]
    given = world.fake.engine("tiny:latest").requests[-1].messages[-1]["content"]
    assert "[1] notes.md, Garden club > Meetings:" in given
    stored = (await client.get(f"{web}/{cid}")).json()["messages"]
    assert stored[0]["content"] == "Where does the club meet?"  # the user's words, as typed
    assert stored[1]["citations"] == start["citations"]

    # The base deleted, the conversation goes on without sources.
    await client.delete(f"{API}/{kb}")
    again = await client.post(f"{web}/{cid}/reply", json={"content": "And the tomatoes?"})
    assert events(again.text)[0][1]["citations"] == []
