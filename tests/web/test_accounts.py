"""Accounts in the browser, on a real server with IAFORALL_AUTH=true: the setup link, signing in
(wrong password, throttling, success), the CSRF header, an ended session that keeps the typed
text, and API keys made in the web app then used with the real `openai` SDK."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.real_server import RealServer, start_server, stop_server
from tests.web.conftest import js_errors, shot, watched

AXE = Axe()
ADMIN, ADMIN_PASSWORD = "ada", "correct horse battery"


@pytest.fixture(scope="module")
def auth_server(model_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """Accounts on, its own database (the model home is shared with other tests), one slot."""
    real = accounts_server(model_home, tmp_path_factory.mktemp("auth"))
    yield real
    stop_server(real)


def accounts_server(model_home: Path, home: Path, **env: str) -> RealServer:
    """A real server with accounts on, its database in `home` (see `auth_database_url`), one
    slot, and `env`."""
    return start_server(
        model_home,
        home / "server.log",
        IAFORALL_AUTH="true",
        IAFORALL_DATABASE_URL=f"sqlite:///{home / 'auth.db'}",
        IAFORALL_PARALLEL="1",
        IAFORALL_MEMBER_TOKENS_PER_DAY="100000",
        **env,
    )


def auth_database_url(server: RealServer) -> str:
    """The auth server's own database (next to its log)."""
    return f"sqlite:///{server.log.parent / 'auth.db'}"


def setup_token(server: RealServer) -> str:
    found = re.search(r"#setup=([\w-]+)", server.log.read_text())
    assert found, server.log.read_text()
    return found.group(1)


def ensure_admin(server: RealServer) -> None:
    """The first admin, through the setup link's API when no test has used the link yet."""
    session = httpx.get(f"{server.url}/web/api/session", timeout=5).json()
    if session["setup_required"]:
        body = {"token": setup_token(server), "name": ADMIN, "password": ADMIN_PASSWORD}
        response = httpx.post(f"{server.url}/web/api/setup", json=body, timeout=10)
        assert response.status_code == 200, response.text


def new_context(browser: Browser, scheme: str = "light", width: int = 1200) -> BrowserContext:
    ctx = browser.new_context(
        locale="en-US",
        color_scheme=scheme,  # type: ignore[arg-type]
        viewport={"width": width, "height": 800},
    )
    ctx.set_default_timeout(15_000)
    return ctx


def sign_in(page: Page, server: RealServer, name: str, password: str, path: str = "/") -> Page:
    page.goto(f"{server.url}{path}")
    expect(page.locator("#auth-screen")).to_be_visible()
    page.fill("#auth-name", name)
    page.fill("#auth-password", password)
    page.click("#auth-submit")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#auth-screen")).to_be_hidden()
    return page


def assert_accessible(page: Page, name: str) -> None:
    page.wait_for_timeout(250)  # let transitions settle so colours are final
    shot(page, name)
    results = AXE.run(page)
    assert results.violations_count == 0, f"{name}:\n{results.generate_report()}"


@pytest.fixture
def admin_page(browser: Browser, auth_server: RealServer) -> Iterator[Page]:
    ensure_admin(auth_server)
    ctx = new_context(browser)
    page = sign_in(watched(ctx.new_page()), auth_server, ADMIN, ADMIN_PASSWORD)
    yield page
    ctx.close()


def test_setup_link_creates_the_first_admin(browser: Browser, auth_server: RealServer) -> None:
    ctx = new_context(browser)
    page = watched(ctx.new_page())
    page.goto(f"{auth_server.url}/#setup={setup_token(auth_server)}")
    expect(page.locator("#auth-heading")).to_have_text("Create the first administrator")
    assert_accessible(page, "accounts-setup")
    page.fill("#auth-name", ADMIN)
    page.fill("#auth-password", ADMIN_PASSWORD)
    page.fill("#auth-confirm", "something else")
    page.click("#auth-submit")
    expect(page.get_by_role("alert")).to_contain_text("The two passwords are different")
    expect(page.locator("#auth-confirm")).to_be_focused()
    page.fill("#auth-confirm", ADMIN_PASSWORD)
    page.click("#auth-submit")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#user-menu-name")).to_have_text(ADMIN)
    assert "setup" not in page.url  # the one-time link leaves the address bar
    session = page.request.get(f"{auth_server.url}/web/api/session").json()
    assert session["user"]["role"] == "admin" and session["setup_required"] is False
    page.locator("#user-menu-button").click()
    expect(page.locator("#user-menu-who")).to_have_text(f"Signed in as {ADMIN} (administrator)")
    expect(page.locator("#admin-link")).to_be_visible()
    assert not js_errors(page)
    ctx.close()


def test_sign_in_errors_in_plain_language_then_success(
    browser: Browser, auth_server: RealServer
) -> None:
    ensure_admin(auth_server)
    # Someone guessing another account's password is held back, with the wait told in words.
    for _ in range(5):
        httpx.post(f"{auth_server.url}/web/api/session", json={"name": "mallory", "password": "x"})
    for scheme in ("light", "dark"):
        ctx = new_context(browser, scheme)
        page = watched(ctx.new_page())
        page.goto(auth_server.url)
        expect(page.locator("#auth-heading")).to_have_text("Sign in")
        expect(page.locator("#auth-name")).to_be_focused()
        assert_accessible(page, f"accounts-login-{scheme}")
        ctx.close()

    ctx = new_context(browser)
    page = watched(ctx.new_page())
    page.goto(auth_server.url)
    page.fill("#auth-name", ADMIN)
    page.fill("#auth-password", "not the password")
    page.press("#auth-password", "Enter")
    expect(page.get_by_role("alert")).to_have_text(
        "Wrong name or password. Check both and try again."
    )
    expect(page.locator("#auth-password")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "accounts-login-error")

    page.fill("#auth-name", "mallory")
    page.fill("#auth-password", "another guess")
    page.click("#auth-submit")
    expect(page.get_by_role("alert")).to_contain_text("Too many failed attempts. Try again in")
    expect(page.get_by_role("alert")).to_contain_text("minutes")

    page.fill("#auth-name", ADMIN)
    page.fill("#auth-password", ADMIN_PASSWORD)
    page.click("#auth-submit")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#model-select")).to_have_value(re.compile("smollm2"))
    assert not js_errors(page)
    ctx.close()


def test_an_ended_session_asks_again_and_keeps_the_typed_text(
    admin_page: Page, auth_server: RealServer
) -> None:
    page = admin_page
    page.fill("#composer-input", "A question I was still writing")
    page.context.clear_cookies()  # the session ends (expired, or closed elsewhere)
    page.locator("#user-menu-button").click()
    page.locator("#keys-button").click()
    expect(page.locator("#auth-notice")).to_contain_text("Your session has ended")
    page.fill("#auth-name", ADMIN)
    page.fill("#auth-password", ADMIN_PASSWORD)
    page.click("#auth-submit")
    expect(page.locator("#auth-screen")).to_be_hidden()
    expect(page.locator("#composer-input")).to_have_value("A question I was still writing")
    assert not js_errors(page)


def test_keys_made_in_the_app_work_with_openai_until_revoked(
    admin_page: Page, auth_server: RealServer
) -> None:
    page = admin_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    csrf_sent: list[str | None] = []
    page.on(
        "request",
        lambda r: (
            csrf_sent.append(r.headers.get("x-csrf-token"))
            if r.method != "GET" and "/web/api/keys" in r.url
            else None
        ),
    )
    token = page.request.get(f"{auth_server.url}/web/api/session").json()["csrf_token"]

    page.locator("#user-menu-button").click()
    page.locator("#keys-button").click()
    dialog = page.locator("#keys-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#my-key-name")).to_be_focused()
    assert_accessible(page, "accounts-keys-empty")
    page.fill("#my-key-name", "my script")
    page.locator("#my-key-name").press("Enter")
    secret_box = page.locator("#my-key-secret")
    expect(secret_box).to_be_focused()
    expect(dialog).to_contain_text("you won't see it again")
    secret = secret_box.input_value()
    assert len(secret) > 20
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(dialog.get_by_role("status")).to_have_text("The key is copied.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    expect(dialog.locator("tbody tr")).to_have_count(1)
    expect(dialog.locator("tbody tr")).to_contain_text("Active")
    assert_accessible(page, "accounts-keys-created")
    assert csrf_sent == [token]  # the state change carried this session's CSRF token

    client = openai.OpenAI(base_url=auth_server.v1, api_key=secret, max_retries=0)
    assert any(m.id.startswith("smollm2") for m in client.models.list().data)

    page.get_by_role("button", name="Revoke the key my script").click()
    expect(page.locator("#confirm-dialog")).to_contain_text("my script")
    page.locator("#confirm-ok").click()
    expect(dialog.locator("tbody tr")).to_contain_text("Revoked on")
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    # Without the token, the same change is refused: the header is what lets it through.
    refused = page.request.post(f"{auth_server.url}/web/api/keys", data={"name": "x"})
    assert refused.status == 403
    assert not js_errors(page)


def test_sign_out(admin_page: Page, auth_server: RealServer) -> None:
    page = admin_page
    page.locator("#user-menu-button").click()
    page.locator("#signout-button").click()
    expect(page.locator("#auth-heading")).to_have_text("Sign in")
    assert page.request.get(f"{auth_server.url}/web/api/session").json()["user"] is None


def test_sign_in_on_a_phone(browser: Browser, auth_server: RealServer) -> None:
    ensure_admin(auth_server)
    ctx = browser.new_context(
        viewport={"width": 375, "height": 740}, locale="fr-FR", has_touch=True, is_mobile=True
    )
    page = watched(ctx.new_page())
    page.goto(auth_server.url)
    expect(page.locator("#auth-heading")).to_have_text("Connexion")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "accounts-login-phone-fr")
    page.fill("#auth-name", ADMIN)
    page.fill("#auth-password", ADMIN_PASSWORD)
    page.click("#auth-submit")
    page.wait_for_selector("body[data-ready]")
    page.locator("#user-menu-button").click()
    expect(page.locator("#keys-button")).to_have_text("Mes clés d\u2019API")
    expect(page.locator("#keys-button")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "accounts-menu-phone-fr")
    assert not js_errors(page)
    ctx.close()
