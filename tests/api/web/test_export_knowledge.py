"""A conversation's knowledge bases and single files go into its JSON export, and come back on
import when they are still there (and readable); the others are left out, the import succeeds."""

from __future__ import annotations

import json

from tests.api.test_knowledge_api import API, NOTES, World, new_base, settled, upload, world

__all__ = ["world"]  # the fixture, shared

WEB = "/web/api/conversations"


async def test_bases_and_files_travel_with_the_export(world: World) -> None:
    client = world.client
    kb, other = (await new_base(client))["id"], (await new_base(client, "Other"))["id"]
    sent = (await upload(client, kb, ("notes.md", NOTES), ("more.md", NOTES + b"\nMore."))).json()
    notes, more = [await settled(client, kb, f["id"]) for f in sent["data"]]
    created = await client.post(
        WEB,
        json={
            "model": "tiny",
            "knowledge": [kb, other],
            "knowledge_files": [notes["id"], more["id"]],
        },
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]

    exported = await client.get(f"{WEB}/{cid}/export", params={"format": "json"})
    document = exported.json()
    assert document["knowledge"] == [kb, other]
    assert document["knowledge_files"] == [notes["id"], more["id"]]

    copy = (await client.post(f"{WEB}/import", content=exported.content)).json()
    assert copy["id"] != cid
    assert copy["knowledge"] == [kb, other]
    assert copy["knowledge_files"] == [notes["id"], more["id"]]

    # Gone since (a base, a file) or never here (another server's ids): left out, no error.
    assert (await client.delete(f"{API}/{other}")).status_code == 204
    assert (await client.delete(f"{API}/{kb}/files/{more['id']}")).status_code == 204
    document["knowledge"].append("from-elsewhere")
    document["knowledge_files"].append("nope")
    imported = await client.post(f"{WEB}/import", content=json.dumps(document))
    assert imported.status_code == 201, imported.text
    assert imported.json()["knowledge"] == [kb]
    assert imported.json()["knowledge_files"] == [notes["id"]]

    # An export from before bases were exported imports as it did.
    del document["knowledge"], document["knowledge_files"]
    older = await client.post(f"{WEB}/import", content=json.dumps(document))
    assert older.status_code == 201
    assert older.json()["knowledge"] == [] and older.json()["knowledge_files"] == []
