"""The admin page in real Chromium: without accounts (the local user is the admin), and on a real
server with accounts: people, quotas, keys per person, usage over time after a real chat, the
live queue, the audit log and its exports; a member sees none of it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest
from playwright.sync_api import Browser, Page, expect

from iaforall.people.accounts import Accounts
from iaforall.store.accounts import UsageEvent
from iaforall.store.database import Database
from tests.real_server import SMOL, RealServer
from tests.web import test_accounts
from tests.web.conftest import js_errors, shot, watched
from tests.web.test_accounts import (
    ADMIN,
    ADMIN_PASSWORD,
    assert_accessible,
    auth_database_url,
    ensure_admin,
    new_context,
    sign_in,
)

auth_server = test_accounts.auth_server  # the same fixture: this module's own server

MEMBER, MEMBER_PASSWORD = "bob", "bob's long password"
VIEWS = ("users", "usage", "queue", "audit")


def open_admin(page: Page, server: RealServer, view: str = "users") -> Page:
    page.goto(f"{server.url}/admin#{view}")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator(f"#view-{view}")).to_be_visible()
    return page


def test_admin_without_accounts_is_the_local_user(browser: Browser, server: RealServer) -> None:
    ctx = new_context(browser)
    page = watched(ctx.new_page())
    page.goto(server.url)
    page.wait_for_selector("body[data-ready]")
    page.locator("#user-menu-button").click()
    expect(page.locator("#keys-button")).to_be_hidden()  # no accounts: keys are not needed
    expect(page.locator("#signout-button")).to_be_hidden()
    page.locator("#admin-link").click()
    page.wait_for_selector("body[data-ready]")
    expect(page.get_by_role("heading", level=1)).to_have_text("People")
    expect(page.locator("#nav-users")).to_have_attribute("aria-current", "page")

    # The live queue: refreshed every 2 s, silent for screen readers unless asked, pausable.
    page.locator("#nav-queue").click()
    expect(page.locator("#queue-table tbody")).to_contain_text(SMOL)
    expect(page.locator("#queue-table tbody")).to_contain_text("Ready")
    # The CPU budget: the cores the scheduler may fill, and the threads in use now.
    expect(page.locator("#queue-cpu")).to_contain_text(
        re.compile(r"CPU threads in use: \d+ of \d+")
    )
    live = page.locator("#queue-live")
    expect(live).to_have_attribute("aria-live", "off")
    first = page.locator("#queue-updated").inner_text()
    expect(page.locator("#queue-updated")).not_to_have_text(first, timeout=6000)
    page.locator("#queue-announce").check()
    expect(live).to_have_attribute("aria-live", "polite")
    page.locator("#queue-pause").click()
    expect(page.locator("#queue-pause")).to_have_attribute("aria-pressed", "true")
    paused = page.locator("#queue-updated").inner_text()
    page.wait_for_timeout(2500)
    expect(page.locator("#queue-updated")).to_have_text(paused)
    assert not js_errors(page)
    ctx.close()


def test_admin_manages_a_member_and_their_quota_and_keys(
    browser: Browser, auth_server: RealServer
) -> None:
    ensure_admin(auth_server)
    ctx = new_context(browser)
    page = sign_in(watched(ctx.new_page()), auth_server, ADMIN, ADMIN_PASSWORD)
    page.locator("#user-menu-button").click()
    page.locator("#admin-link").click()
    page.wait_for_selector("body[data-ready]")

    page.fill("#new-user-name", MEMBER)
    page.select_option("#new-user-role", "member")
    page.fill("#new-user-password", MEMBER_PASSWORD)
    page.get_by_role("button", name="Add", exact=True).click()
    row = page.locator("#users-table tbody tr", has_text=MEMBER)
    expect(row).to_contain_text("member")
    expect(row).to_contain_text("100,000")  # the role's default, from the server's settings

    page.get_by_role("button", name=f"Manage {MEMBER}").click()
    dialog = page.locator("#user-dialog")
    expect(dialog).to_be_visible()
    tokens = page.locator("#quota-tokens_per_day")
    expect(tokens).to_have_attribute("placeholder", "Role: 100,000")
    expect(tokens).to_have_value("")
    tokens.fill("5000")
    storage = page.locator("#quota-storage_mb")
    expect(storage).to_have_attribute("placeholder", "Role: 500")
    page.fill("#quota-concurrent_requests", "1")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator("[role=status]").first).to_have_text(f"Changes to {MEMBER} saved.")
    users = page.request.get(f"{auth_server.url}/admin/api/users").json()["data"]
    bob = next(u for u in users if u["name"] == MEMBER)
    assert bob["quota"] == {
        "tokens_per_day": 5000,
        "concurrent_requests": 1,
        "max_context": None,
        "storage_mb": None,
    }
    assert bob["effective_quota"]["tokens_per_day"] == 5000
    expect(row).to_contain_text("5,000")

    # A key for this person, made by the admin, shown once.
    page.fill("#user-key-name", "bob's laptop")
    page.locator("#user-key-name").press("Enter")
    expect(page.locator("#user-key-secret")).to_be_focused()
    secret = page.locator("#user-key-secret").input_value()
    client = openai.OpenAI(base_url=auth_server.v1, api_key=secret, max_retries=0)
    assert client.models.list().data
    assert_accessible(page, "admin-user-dialog")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert not js_errors(page)
    ctx.close()


@pytest.fixture
def member_page(browser: Browser, auth_server: RealServer) -> Iterator[Page]:
    ctx = new_context(browser)
    page = sign_in(watched(ctx.new_page()), auth_server, MEMBER, MEMBER_PASSWORD)
    yield page
    ctx.close()


def test_a_member_sees_no_admin(member_page: Page, auth_server: RealServer) -> None:
    page = member_page
    page.locator("#user-menu-button").click()
    expect(page.locator("#user-menu-who")).to_have_text(f"Signed in as {MEMBER} (member)")
    expect(page.locator("#keys-button")).to_be_visible()
    expect(page.locator("#admin-link")).to_be_hidden()
    for path in ("/admin/api/users", "/admin/api/usage", "/admin/api/queue"):
        assert page.request.get(f"{auth_server.url}{path}").status == 403, path
    page.goto(f"{auth_server.url}/admin")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#admin-main")).to_contain_text("Only administrators can see this page.")
    expect(page.locator("#admin-nav")).to_be_hidden()
    assert not js_errors(page)


def member_key(server: RealServer) -> str:
    """An API key of the member's own, made through the web API as the browser would."""
    login = httpx.post(
        f"{server.url}/web/api/session",
        json={"name": MEMBER, "password": MEMBER_PASSWORD},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    made = httpx.post(
        f"{server.url}/web/api/keys",
        json={"name": "usage"},
        cookies=login.cookies,
        headers={"X-CSRF-Token": login.json()["csrf_token"]},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


def test_a_chat_is_recorded_as_usage(auth_server: RealServer) -> None:
    ensure_admin(auth_server)
    client = openai.OpenAI(base_url=auth_server.v1, api_key=member_key(auth_server), max_retries=0)
    answer = client.chat.completions.create(
        model=SMOL, messages=[{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0
    )
    assert answer.usage is not None
    login = httpx.post(
        f"{auth_server.url}/web/api/session",
        json={"name": ADMIN, "password": ADMIN_PASSWORD},
        timeout=10,
    )
    rows = httpx.get(
        f"{auth_server.url}/admin/api/usage", cookies=login.cookies, timeout=10
    ).json()["data"]
    assert any(r["user"] == MEMBER and r["completion_tokens"] > 0 for r in rows), rows


def record_usage(server: RealServer) -> dict[str, int]:
    """Three days of requests by two people, written to the server's own database as
    `Accounts.record_usage` does (but on past days too); the tokens per person today."""
    database = Database(auth_database_url(server))
    users = {u.name: u.id for u in Accounts(database, 1).list_users()}
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    plan = [(MEMBER, 0, 120, 40), (MEMBER, 1, 300, 90), (ADMIN, 1, 50, 20), (ADMIN, 3, 800, 200)]
    with database.session() as session:
        for name, days_ago, prompt, completion in plan:
            session.add(
                UsageEvent(
                    user_id=users[name],
                    model=SMOL,
                    at=now - timedelta(days=days_ago),
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                )
            )
    # Today's total also holds what other tests' real chats recorded.
    today = Accounts(database, 1).tokens_today(users[MEMBER])
    database.engine.dispose()
    return {MEMBER: today}


def test_usage_chart_and_every_view_accessible(browser: Browser, auth_server: RealServer) -> None:
    ensure_admin(auth_server)
    used = record_usage(auth_server)[MEMBER]

    for scheme in ("light", "dark"):
        ctx = new_context(browser, scheme)
        page = sign_in(watched(ctx.new_page()), auth_server, ADMIN, ADMIN_PASSWORD)
        for view in VIEWS:
            open_admin(page, auth_server, view)
            if view == "usage":
                chart = page.locator("#usage-chart svg[role=img]")
                expect(chart.locator("rect")).to_have_count(4)  # one per person and day
                expect(page.locator("#usage-chart figcaption")).to_have_text(
                    "Tokens per person and per day, last 30 days"
                )
                table = page.locator("#usage-table")
                expect(table.locator("thead")).to_contain_text(MEMBER)
                expect(table.locator("tbody tr").first).to_contain_text(f"{used:,}")
                expect(page.locator("#usage-summary")).to_contain_text("busiest day")
                page.select_option("#usage-measure", "requests")
                expect(page.locator("#usage-chart figcaption")).to_contain_text("Requests")
                # What each person keeps, against their storage quota (members: 500 MB).
                storage = page.locator("#storage-table")
                expect(storage.locator("tbody tr", has_text=MEMBER)).to_contain_text("500 MB")
                expect(storage.locator("tbody tr", has_text=ADMIN)).to_contain_text("No limit")
            if view == "audit":
                expect(page.locator("#audit-count")).to_have_text(
                    "No decision matches these filters."
                )
                page.select_option("#audit-action", "block")
                page.get_by_role("button", name="Filter").click()
                csv = page.locator("#audit-export-csv")
                expect(csv).to_have_attribute("href", re.compile(r"action=block&format=csv$"))
                href = csv.get_attribute("href") or ""
                export = page.request.get(f"{auth_server.url}{href}")
                assert export.status == 200 and "text/csv" in export.headers["content-type"]
            assert_accessible(page, f"admin-{view}-{scheme}")
        assert not js_errors(page)
        ctx.close()


def test_admin_in_french_on_a_phone(browser: Browser, auth_server: RealServer) -> None:
    ensure_admin(auth_server)
    ctx = browser.new_context(
        viewport={"width": 375, "height": 740}, locale="fr-FR", has_touch=True, is_mobile=True
    )
    ctx.set_default_timeout(15_000)
    page = sign_in(watched(ctx.new_page()), auth_server, ADMIN, ADMIN_PASSWORD)
    for view, title in zip(
        VIEWS,
        ("Personnes", "Utilisation", "File d\u2019attente", "Journal d\u2019audit"),
        strict=True,
    ):
        open_admin(page, auth_server, view)
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{view}: {width}px wide"
        shot(page, f"admin-{view}-phone-fr")
    expect(page.locator("#usage-table, #view-usage .note").first).to_be_attached()
    open_admin(page, auth_server, "users")
    page.get_by_role("button", name=re.compile(f"Gérer {MEMBER}")).click()
    expect(page.locator("#quota-tokens_per_day")).to_be_in_viewport()
    assert not js_errors(page)
    ctx.close()
