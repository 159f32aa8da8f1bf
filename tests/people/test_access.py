"""Who may do what, over real HTTP with accounts on: keys, sessions, CSRF, roles, throttling."""

from __future__ import annotations

import httpx
import pytest

from iaforall.api.auth import SESSION_COOKIE
from tests.people.conftest import PASSWORD, Shared

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}


def assert_openai_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and "type" in error


async def test_the_api_needs_a_valid_unrevoked_key(shared: Shared) -> None:
    assert_openai_error(await shared.client.get("/v1/models"), 401, "invalid_api_key")
    bad = {"Authorization": "Bearer iaf_000000000000_" + "x" * 43}
    assert_openai_error(await shared.client.get("/v1/models", headers=bad), 401, "invalid_api_key")
    mangled = {"Authorization": "Bearer not-a-key"}
    assert_openai_error(
        await shared.client.get("/v1/models", headers=mangled), 401, "invalid_api_key"
    )

    bob, csrf = await shared.login("bob")
    created = await bob.post(
        "/web/api/keys", json={"name": "laptop"}, headers={"X-CSRF-Token": csrf}
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("iaf_") and created.json()["name"] == "laptop"
    auth = {"Authorization": f"Bearer {key}"}
    assert (await shared.client.get("/v1/models", headers=auth)).status_code == 200
    chat = await shared.client.post("/v1/chat/completions", json=CHAT, headers=auth)
    assert chat.status_code == 200
    # The key is never shown again, and the server keeps only its hash.
    listed = (await bob.get("/web/api/keys")).json()["data"]
    assert listed[0]["last_used_at"] is not None and "key" not in listed[0]
    stored = b"".join(p.read_bytes() for p in shared.home.glob("iaforall.db*"))
    assert key.split("_", 2)[2].encode() not in stored and b"laptop" in stored

    revoked = await bob.delete(
        f"/web/api/keys/{created.json()['id']}", headers={"X-CSRF-Token": csrf}
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert_openai_error(await shared.client.get("/v1/models", headers=auth), 401, "invalid_api_key")
    # x-api-key works too (some clients send it).
    again = (await bob.post("/web/api/keys", json={}, headers={"X-CSRF-Token": csrf})).json()
    assert (
        await shared.client.get("/v1/models", headers={"x-api-key": again["key"]})
    ).status_code == 200


async def test_a_member_sees_only_their_own(shared: Shared) -> None:
    ada, ada_csrf = await shared.login("ada")
    bob, bob_csrf = await shared.login("bob")
    mine = await ada.post(
        "/web/api/conversations", json={"title": "Ada's"}, headers={"X-CSRF-Token": ada_csrf}
    )
    cid = mine.json()["id"]
    assert (await bob.get("/web/api/conversations")).json()["data"] == []
    for method, path in (
        ("GET", f"/web/api/conversations/{cid}"),
        ("DELETE", f"/web/api/conversations/{cid}"),
        ("GET", f"/web/api/conversations/{cid}/export"),
    ):
        response = await bob.request(method, path, headers={"X-CSRF-Token": bob_csrf})
        assert_openai_error(response, 404, "not_found")
    ada_key = (await ada.post("/web/api/keys", json={}, headers={"X-CSRF-Token": ada_csrf})).json()
    stolen = await bob.delete(f"/web/api/keys/{ada_key['id']}", headers={"X-CSRF-Token": bob_csrf})
    assert_openai_error(stolen, 404, "not_found")
    assert (await bob.get("/web/api/keys")).json()["data"] == []
    for path in ("/admin/api/users", "/admin/api/usage", "/admin/api/keys", "/admin/api/queue"):
        assert_openai_error(await bob.get(path), 403, "forbidden")
    listing = (await ada.get("/admin/api/users")).json()
    assert listing["role_quotas"]["member"] == {
        "tokens_per_day": 0,
        "concurrent_requests": 2,
        "max_context": 0,
        "storage_mb": 500,
    }
    # Ada's conversation is untouched.
    assert (await ada.get(f"/web/api/conversations/{cid}")).json()["title"] == "Ada's"


async def test_csrf_and_other_sites_are_refused(shared: Shared) -> None:
    bob, csrf = await shared.login("bob")
    body = {"title": "x"}
    assert_openai_error(await bob.post("/web/api/conversations", json=body), 403, "forbidden")
    wrong = await bob.post("/web/api/conversations", json=body, headers={"X-CSRF-Token": "nope"})
    assert_openai_error(wrong, 403, "forbidden")
    elsewhere = await bob.post(
        "/web/api/conversations",
        json=body,
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert_openai_error(elsewhere, 403, "forbidden")
    assert "another web site" in elsewhere.json()["error"]["message"]
    ok = await bob.post("/web/api/conversations", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    assert (await bob.get("/web/api/conversations")).status_code == 200  # reads need no token


async def test_login_rotates_sessions_and_logout_ends_them(shared: Shared) -> None:
    client = shared.client_for(Origin=shared.url)
    first = await client.post("/web/api/session", json={"name": "bob", "password": PASSWORD})
    old = first.cookies[SESSION_COOKIE]
    cookie = first.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    second = await client.post("/web/api/session", json={"name": "BOB", "password": PASSWORD})
    new = second.cookies[SESSION_COOKIE]
    assert new != old
    stale = shared.client_for()
    stale.cookies.set(SESSION_COOKIE, old)
    assert_openai_error(await stale.get("/web/api/conversations"), 401, "invalid_api_key")
    me = (await client.get("/web/api/session")).json()
    assert me["user"]["name"] == "bob" and me["csrf_token"] == second.json()["csrf_token"]
    assert (await client.delete("/web/api/session")).status_code == 204
    assert (await client.get("/web/api/session")).json()["user"] is None
    assert_openai_error(await client.get("/web/api/conversations"), 401, "invalid_api_key")


async def test_login_guessing_is_throttled(shared: Shared) -> None:
    client = shared.client_for()
    for _ in range(5):
        wrong = await client.post("/web/api/session", json={"name": "ada", "password": "guess!!!"})
        assert_openai_error(wrong, 401, "invalid_api_key")
        assert wrong.json()["error"]["message"] == "Wrong name or password."
    blocked = await client.post("/web/api/session", json={"name": "ada", "password": PASSWORD})
    assert_openai_error(blocked, 429, "too_many_attempts")
    assert 800 < int(blocked.headers["retry-after"]) <= 900
    # Another account is not locked by guesses at this one; an unknown name says the same.
    assert (
        await client.post("/web/api/session", json={"name": "bob", "password": PASSWORD})
    ).status_code == 200
    unknown = await client.post("/web/api/session", json={"name": "nobody", "password": "x" * 9})
    assert unknown.json()["error"]["message"] == "Wrong name or password."


async def test_disabled_users_and_their_keys_stop_working(shared: Shared) -> None:
    bob, csrf = await shared.login("bob")
    key = (await bob.post("/web/api/keys", json={}, headers={"X-CSRF-Token": csrf})).json()["key"]
    ada, ada_csrf = await shared.login("ada")
    changed = await ada.patch(
        "/admin/api/users/bob", json={"disabled": True}, headers={"X-CSRF-Token": ada_csrf}
    )
    assert changed.status_code == 200 and changed.json()["disabled"] is True
    assert_openai_error(await bob.get("/web/api/conversations"), 401, "invalid_api_key")
    auth = {"Authorization": f"Bearer {key}"}
    assert_openai_error(await shared.client.get("/v1/models", headers=auth), 401, "invalid_api_key")
    last_admin = await ada.patch(
        "/admin/api/users/ada", json={"role": "member"}, headers={"X-CSRF-Token": ada_csrf}
    )
    assert_openai_error(last_admin, 400, "invalid_request")


async def test_the_setup_link_makes_the_first_admin_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from iaforall.app import create_app
    from tests.conftest import served, stock_store
    from tests.people.conftest import settings_with_accounts

    stock_store(tmp_path)
    app = create_app(settings_with_accounts(tmp_path))
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        svc = app.state.services
        state = (await client.get("/web/api/session")).json()
        assert state == {"auth": True, "setup_required": True, "user": None, "csrf_token": None}
        token = svc.setup_token
        wrong = await client.post(
            "/web/api/setup", json={"token": "x", "name": "a", "password": PASSWORD}
        )
        assert_openai_error(wrong, 403, "forbidden")
        made = await client.post(
            "/web/api/setup", json={"token": token, "name": "root", "password": PASSWORD}
        )
        assert made.status_code == 200 and made.json()["user"]["role"] == "admin"
        assert (await client.get("/admin/api/users")).status_code == 200  # signed in
        again = await client.post(
            "/web/api/setup", json={"token": token, "name": "root2", "password": PASSWORD}
        )
        assert_openai_error(again, 403, "forbidden")


async def test_without_accounts_only_loopback_names_are_served(fake) -> None:  # type: ignore[no-untyped-def]
    assert (await fake.client.get("/v1/models")).status_code == 200
    rebound = await fake.client.get("/v1/models", headers={"Host": "evil.example:8080"})
    assert_openai_error(rebound, 403, "forbidden")
    for host in ("localhost:8080", "[::1]:8080", "127.0.0.1"):
        assert (await fake.client.get("/v1/models", headers={"Host": host})).status_code == 200
    cross = await fake.client.post(
        "/web/api/conversations", json={}, headers={"Origin": "https://evil.example"}
    )
    assert_openai_error(cross, 403, "forbidden")


@pytest.mark.parametrize(
    "path",
    ["/health", "/web/api/languages", "/web/api/session", "/v1/policy", "/rules", "/", "/admin"],
)
async def test_public_paths_stay_public(shared: Shared, path: str) -> None:
    assert (await shared.client.get(path)).status_code == 200
