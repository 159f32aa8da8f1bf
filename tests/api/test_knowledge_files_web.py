"""A web conversation that answers from single files rather than whole bases: the files are
checked, kept with the conversation, and only their passages are given to the model."""

from __future__ import annotations

from tests.api.test_knowledge_api import API, NOTES, World, new_base, settled, upload, world
from tests.sse import events

__all__ = ["world"]  # the fixture, shared

WEB = "/web/api/conversations"
OTHER = b"""# Bakery

## Opening hours

The bakery opens at six and the club never meets there.
"""


async def test_a_conversation_answers_from_the_files_it_keeps(world: World) -> None:
    client = world.client
    kb = (await new_base(client))["id"]
    sent = (await upload(client, kb, ("notes.md", NOTES), ("bakery.md", OTHER))).json()["data"]
    notes, bakery = [await settled(client, kb, f["id"]) for f in sent]
    assert (notes["status"], bakery["status"]) == ("ready", "ready")

    missing = await client.post(WEB, json={"model": "tiny", "knowledge_files": ["nope"]})
    assert missing.status_code == 404
    created = await client.post(WEB, json={"model": "tiny"})
    assert created.json()["knowledge_files"] == []
    cid = created.json()["id"]
    bad = await client.patch(f"{WEB}/{cid}", json={"knowledge_files": ["nope"]})
    assert bad.status_code == 404
    patched = await client.patch(f"{WEB}/{cid}", json={"knowledge_files": [bakery["id"]]})
    assert patched.status_code == 200 and patched.json()["knowledge_files"] == [bakery["id"]]
    assert (await client.get(f"{WEB}/{cid}")).json()["knowledge_files"] == [bakery["id"]]

    reply = await client.post(f"{WEB}/{cid}/reply", json={"content": "Where does the club meet?"})
    cited = events(reply.text)[0][1]["citations"]
    assert cited and {c["document"] for c in cited} == {"bakery.md"}
    given = world.fake.engine("tiny:latest").requests[-1].messages[-1]["content"]
    assert "bakery.md" in given and "notes.md" not in given

    # The file deleted, the conversation goes on without it.
    await client.delete(f"{API}/{kb}/files/{bakery['id']}")
    again = await client.post(f"{WEB}/{cid}/reply", json={"content": "And the bakery?"})
    assert events(again.text)[0][1]["citations"] == []

    cleared = await client.patch(f"{WEB}/{cid}", json={"knowledge_files": []})
    assert cleared.json()["knowledge_files"] == []
