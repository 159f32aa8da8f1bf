"""Knowledge bases with accounts: private to their owner, readable (never writable) by the
people it is shared with, and out of reach again once unshared."""

from __future__ import annotations

import httpx

from tests.people.conftest import Shared

API = "/v1/knowledge_bases"


async def key_for(shared: Shared, name: str) -> dict[str, str]:
    client, csrf = await shared.login(name)
    created = await client.post("/web/api/keys", json={"name": "k"}, headers={"X-CSRF-Token": csrf})
    await client.aclose()
    return {"Authorization": f"Bearer {created.json()['key']}"}


async def test_a_base_is_private_until_shared_and_then_read_only(shared: Shared) -> None:
    ada, bob = await key_for(shared, "ada"), await key_for(shared, "bob")
    c: httpx.AsyncClient = shared.client
    kb = (await c.post(API, json={"name": "Ada's notes"}, headers=ada)).json()["id"]
    sent = await c.post(
        f"{API}/{kb}/files", files=[("file", ("n.md", b"# N\n\nThe key is under the mat."))],
        headers=ada,
    )  # fmt: skip
    assert sent.status_code == 202

    # Bob does not see it, cannot search, upload, share or delete it.
    assert (await c.get(API, headers=bob)).json()["data"] == []
    for method, path in [("get", ""), ("post", "/search"), ("delete", "")]:
        response = await c.request(method, f"{API}/{kb}{path}", json={"query": "key"}, headers=bob)
        assert response.status_code == 404, (method, path, response.text)
    assert (await c.put(f"{API}/{kb}/shares/ada", headers=bob)).status_code == 404

    shared_base = (await c.put(f"{API}/{kb}/shares/bob", headers=ada)).json()
    assert shared_base["shared_with"] != [] and shared_base["access"] == "owner"
    seen = (await c.get(API, headers=bob)).json()["data"]
    assert [(b["name"], b["access"], b["shared_with"]) for b in seen] == [
        ("Ada's notes", "read", [])
    ]
    search = await c.post(f"{API}/{kb}/search", json={"query": "key"}, headers=bob)
    assert search.status_code == 200
    forbidden = [
        ("post", f"{API}/{kb}/files"),
        ("delete", f"{API}/{kb}"),
        ("patch", f"{API}/{kb}"),
        ("put", f"{API}/{kb}/shares/ada"),
    ]
    for method, path in forbidden:
        response = await c.request(method, path, json={"name": "x"}, headers=bob)
        assert response.status_code == 403, (method, path, response.text)
        assert "read only" in response.json()["error"]["message"]
    nobody = await c.put(f"{API}/{kb}/shares/nobody", headers=ada)
    assert nobody.status_code == 404

    await c.delete(f"{API}/{kb}/shares/bob", headers=ada)
    assert (await c.get(f"{API}/{kb}", headers=bob)).status_code == 404


async def test_the_owner_sees_the_names_it_is_shared_with(shared: Shared) -> None:
    ada = await key_for(shared, "ada")
    c: httpx.AsyncClient = shared.client
    kb = (await c.post(API, json={"name": "Names"}, headers=ada)).json()["id"]
    assert (await c.get(f"{API}/{kb}", headers=ada)).json()["shared_with_names"] == []
    put = (await c.put(f"{API}/{kb}/shares/bob", headers=ada)).json()
    assert put["shared_with_names"] == ["bob"] and len(put["shared_with"]) == 1
    listed = (await c.get(API, headers=ada)).json()["data"]
    assert [b["shared_with_names"] for b in listed if b["id"] == kb] == [["bob"]]
    gone = (await c.delete(f"{API}/{kb}/shares/bob", headers=ada)).json()
    assert gone["shared_with"] == [] and gone["shared_with_names"] == []
