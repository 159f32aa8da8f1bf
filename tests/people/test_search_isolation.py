"""Searching conversations over HTTP with accounts on: each person finds their own only, even
when someone else's messages match better and are many more."""

from __future__ import annotations

from tests.people.conftest import Shared
from tests.people.test_knowledge_sharing import key_for

API = "/web/api/conversations"


def conversation(title: str, *texts: str) -> dict[str, object]:
    return {
        "format": "iaforall.conversation",
        "version": 1,
        "title": title,
        "messages": [{"role": "user", "content": text} for text in texts],
    }


async def test_search_finds_only_the_askers_conversations(shared: Shared) -> None:
    ada, bob = await key_for(shared, "ada"), await key_for(shared, "bob")
    c = shared.client
    mine = conversation("Bob's trip", "Where is the secret beach?")
    theirs = conversation("Ada's secret", *(["the SECRET plan, again"] * 500))
    for document, key in ((mine, bob), (theirs, ada)):
        assert (await c.post(f"{API}/import", json=document, headers=key)).status_code == 201
    found = (await c.get(API, params={"q": "secret"}, headers=bob)).json()["data"]
    assert [(f["title"], f["message_count"]) for f in found] == [("Bob's trip", 1)]
    assert "secret beach" in found[0]["snippet"]
    assert (await c.get(API, params={"q": "plan"}, headers=bob)).json()["data"] == []
    theirs_found = (await c.get(API, params={"q": "secret"}, headers=ada)).json()["data"]
    assert [(f["title"], f["message_count"]) for f in theirs_found] == [("Ada's secret", 500)]
