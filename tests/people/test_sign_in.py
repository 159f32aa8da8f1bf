"""Signing in over real HTTP: only from our own page and as JSON (no login CSRF), throttled per
address as well as per account, and never more password hashes at once than allowed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool

from iaforall.api.auth import SESSION_COOKIE
from iaforall.app import create_app
from iaforall.people.accounts import Accounts, UserView
from iaforall.services import Services
from tests.conftest import served, stock_store
from tests.people.conftest import PASSWORD, Shared, settings_with_accounts
from tests.people.test_access import assert_openai_error

LOGIN = {"name": "bob", "password": PASSWORD}


@asynccontextmanager
async def server(home: Path, *, users: bool = True, **people: Any) -> AsyncIterator[
    tuple[httpx.AsyncClient, Services]
]:  # fmt: skip
    """The app with accounts on and `people` settings, over real HTTP; `bob` (a member) and
    `ada` (an admin) when `users`, else waiting for its first admin."""
    stock_store(home)
    app = create_app(settings_with_accounts(home, **people))
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        svc: Services = app.state.services
        if users:
            svc.accounts.create_user("ada", PASSWORD, "admin")
            svc.accounts.create_user("bob", PASSWORD, "member")
        yield client, svc


def no_session(response: httpx.Response) -> bool:
    return SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_another_sites_page_cannot_sign_anyone_in(shared: Shared) -> None:
    client = shared.client_for()
    own = shared.url  # http://127.0.0.1:PORT
    # What a form on another site sends: text/plain (no preflight), the browser's own headers.
    form = await client.post(
        "/web/api/session",
        content=b'{"name": "bob", "password": "correct horse battery"}',
        headers={"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"},
    )
    assert_openai_error(form, 403, "forbidden")
    assert "another web site" in form.json()["error"]["message"] and no_session(form)
    for headers in (
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": own.replace("127.0.0.1", "localhost")},
        {"Origin": "https://evil.example"},  # a browser without Sec-Fetch-Site
        {"Origin": "null"},  # a sandboxed frame, a redirect
        {"Origin": own.replace("http://", "https://")},  # another scheme
        {"Origin": own.rsplit(":", 1)[0] + ":1"},  # another port
    ):
        refused = await client.post("/web/api/session", json=LOGIN, headers=headers)
        assert_openai_error(refused, 403, "forbidden")
        assert no_session(refused), headers
    # Even from our own page, a body that is not declared JSON is refused, with the fix.
    plain = await client.post(
        "/web/api/session",
        content=b'{"name": "bob", "password": "correct horse battery"}',
        headers={"Content-Type": "text/plain;charset=UTF-8", "Sec-Fetch-Site": "same-origin"},
    )
    assert_openai_error(plain, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in plain.json()["error"]["message"]
    assert no_session(plain)

    # Our page (a modern browser, an older one, the address bar) and clients that are not
    # browsers (curl, the CLI, SDKs: no Origin, no Sec-Fetch-Site) sign in.
    for headers in (
        {"Sec-Fetch-Site": "same-origin", "Origin": own},
        {"Sec-Fetch-Site": "none"},
        {"Origin": own},
        {},
    ):
        fine = await shared.client_for().post("/web/api/session", json=LOGIN, headers=headers)
        assert fine.status_code == 200 and not no_session(fine), (headers, fine.text)
    charset = await client.post(
        "/web/api/session",
        content=b'{"name": "bob", "password": "correct horse battery"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 200


async def test_a_session_cookie_changes_nothing_from_another_site(shared: Shared) -> None:
    bob, csrf = await shared.login("bob")
    # Even with the CSRF token (leaked, say), a browser request from another page is refused.
    for site in ("cross-site", "same-site"):
        response = await bob.post(
            "/web/api/conversations",
            json={"title": "x"},
            headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": site},
        )
        assert_openai_error(response, 403, "forbidden")
    out = await bob.delete("/web/api/session", headers={"Sec-Fetch-Site": "cross-site"})
    assert_openai_error(out, 403, "forbidden")
    assert (await bob.get("/web/api/session")).json()["user"]["name"] == "bob"
    ours = await bob.post(
        "/web/api/conversations",
        json={"title": "x"},
        headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-origin"},
    )
    assert ours.status_code == 201
    assert (
        await bob.get("/web/api/conversations", headers={"Sec-Fetch-Site": "cross-site"})
    ).is_success


async def test_setup_is_refused_from_another_site(tmp_path: Path) -> None:
    async with server(tmp_path, users=False) as (client, svc):
        token = svc.setup_token
        body = {"token": token, "name": "root", "password": PASSWORD}
        elsewhere = await client.post(
            "/web/api/setup", json=body, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert_openai_error(elsewhere, 403, "forbidden")
        plain = await client.post(
            "/web/api/setup",
            content=httpx.Request("POST", "/", json=body).content,
            headers={"Content-Type": "text/plain"},
        )
        assert_openai_error(plain, 415, "unsupported_media_type")
        assert no_session(elsewhere) and no_session(plain) and svc.setup_token == token
        made = await client.post(
            "/web/api/setup", json=body, headers={"Origin": str(client.base_url).rstrip("/")}
        )
        assert made.status_code == 200 and made.json()["user"]["role"] == "admin"


async def test_a_mangled_setup_token_is_a_400(tmp_path: Path) -> None:
    async with server(tmp_path, users=False) as (client, svc):
        token = svc.setup_token
        assert token is not None
        body = {"token": token, "name": "root", "password": PASSWORD}
        for mangled in ("é" + token[1:], "jeton-à-usage-unique", "\u202e" + token, "🔑"):
            response = await client.post("/web/api/setup", json={**body, "token": mangled})
            assert_openai_error(response, 400, "invalid_request")
            assert "copy the whole link" in response.json()["error"]["message"]
            assert response.json()["error"]["param"] == "token"
        assert svc.setup_token == token  # none of those spent the link
        made = await client.post("/web/api/setup", json=body)
        assert made.status_code == 200 and made.json()["user"]["role"] == "admin"


async def test_fresh_names_from_one_address_are_throttled(tmp_path: Path) -> None:
    async with server(tmp_path, login_address_attempts=3) as (client, svc):
        for name in ("anna", "boris", "carla"):  # a new name each time: no account window
            wrong = await client.post("/web/api/session", json={"name": name, "password": "x"})
            assert_openai_error(wrong, 401, "invalid_api_key")
        for attempt in ({"name": "dmitri", "password": "x"}, LOGIN):
            held = await client.post("/web/api/session", json=attempt)
            assert_openai_error(held, 429, "too_many_attempts")
            assert 800 < int(held.headers["retry-after"]) <= 900
        assert svc.login_limiter.retry_after("bob", "192.0.2.1") == 0  # another address


async def test_setup_guesses_are_throttled_by_address(tmp_path: Path) -> None:
    async with server(tmp_path, users=False, login_address_attempts=2) as (client, svc):
        token = svc.setup_token
        for guess in ("a" * 43, "b" * 43):
            wrong = await client.post(
                "/web/api/setup", json={"token": guess, "name": "root", "password": PASSWORD}
            )
            assert_openai_error(wrong, 403, "forbidden")
        held = await client.post(
            "/web/api/setup", json={"token": token, "name": "root", "password": PASSWORD}
        )
        assert_openai_error(held, 429, "too_many_attempts")
        assert int(held.headers["retry-after"]) > 0 and svc.setup_token == token


class Watched:
    """The real `check_password` (a real argon2 verification), counting how many run at once;
    `gate`, when set, holds each call until it opens."""

    def __init__(self, accounts: Accounts) -> None:
        self._real = accounts.check_password
        self._lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.calls = 0
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def __call__(self, name: str, password: str) -> UserView | None:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        self.entered.set()
        try:
            if self.gate is not None:
                self.gate.wait(30)
            return self._real(name, password)
        finally:
            with self._lock:
                self.running -= 1


async def test_password_hashes_run_one_at_a_time_when_so_configured(tmp_path: Path) -> None:
    async with server(tmp_path, password_hash_concurrency=1, password_hash_wait=60) as (
        client,
        svc,
    ):
        watched = Watched(svc.accounts)
        svc.accounts.check_password = watched  # type: ignore[method-assign]
        attempts = [{"name": f"guest{i}", "password": f"guess {i}!"} for i in range(5)]
        answers = await asyncio.gather(
            *(client.post("/web/api/session", json=a) for a in attempts),
            client.post("/web/api/session", json=LOGIN),
        )
        assert [a.status_code for a in answers] == [401] * 5 + [200]
        assert watched.calls == 6 and watched.most == 1


async def test_a_sign_in_that_waits_too_long_for_a_slot_gets_a_429(tmp_path: Path) -> None:
    async with server(tmp_path, password_hash_concurrency=1, password_hash_wait=0.5) as (
        client,
        svc,
    ):
        watched = Watched(svc.accounts)
        watched.gate = threading.Event()
        svc.accounts.check_password = watched  # type: ignore[method-assign]
        first = asyncio.create_task(client.post("/web/api/session", json=LOGIN))
        assert await run_in_threadpool(watched.entered.wait, 30)  # it holds the only slot
        busy = await client.post("/web/api/session", json={"name": "ada", "password": PASSWORD})
        assert_openai_error(busy, 429, "server_busy")
        assert int(busy.headers["retry-after"]) >= 1
        assert "checking other passwords" in busy.json()["error"]["message"]
        await run_in_threadpool(watched.gate.set)
        assert (await first).status_code == 200
        assert watched.calls == 1 and watched.most == 1
        again = await client.post("/web/api/session", json={"name": "ada", "password": PASSWORD})
        assert again.status_code == 200  # the slot came back
