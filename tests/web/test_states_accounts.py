"""The state catalogue (tests/web/test_states.py), continued on a server with accounts: the API
keys dialog, the admin's dialog for one person, and an answer paused by preemption (one slot,
IAFORALL_PREEMPT: the signed-in person's answer is paused when someone else, with nothing
running, asks). The same checks: axe under the WCAG 2.2 tags in four looks, screenshots, a
keyboard walk, and what screen readers are told."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.real_server import SMOL, RealServer, stop_server
from tests.web.conftest import js_errors, watched
from tests.web.states import Line, Listener, check_state, new_context, set_language
from tests.web.test_accounts import (
    ADMIN,
    ADMIN_PASSWORD,
    accounts_server,
    ensure_admin,
    sign_in,
)
from tests.web.test_knowledge import signed_in
from tests.web.test_states import WRITING

MEMBER, MEMBER_PASSWORD = "kim", "kim's long password"
PAUSED = re.compile(r"^(Paused to give someone else a turn|En pause pour laisser passer)")


@pytest.fixture(scope="module")
def auth_server(model_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """Accounts on (the admin and a member), its own database, one slot, preemption on."""
    real = accounts_server(
        model_home, tmp_path_factory.mktemp("states-auth"), IAFORALL_PREEMPT="true"
    )
    try:
        ensure_admin(real)
        with closing(signed_in(real, ADMIN, ADMIN_PASSWORD)) as admin:
            body = {"name": MEMBER, "password": MEMBER_PASSWORD, "role": "member"}
            made = admin.post("/admin/api/users", json=body)
            assert made.status_code == 201, made.text
        yield real
    finally:
        stop_server(real)


@pytest.fixture
def page(browser: Browser, auth_server: RealServer) -> Iterator[Page]:
    """The admin, signed in, in the catalogue's context (375 px, reduced motion)."""
    context = new_context(browser)
    page = sign_in(watched(context.new_page()), auth_server, ADMIN, ADMIN_PASSWORD)
    yield page
    assert not js_errors(page)
    context.close()


def pressed(page: Page, selector: str) -> None:
    page.locator(selector).focus()
    page.keyboard.press("Enter")


def test_the_api_keys_dialog(page: Page) -> None:
    pressed(page, "#user-menu-button")
    expect(page.locator("#user-menu")).to_be_visible()
    pressed(page, "#keys-button")
    dialog = page.locator("#keys-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#my-key-name")).to_be_focused()
    page.keyboard.type("my script")
    page.keyboard.press("Enter")
    expect(page.locator("#my-key-secret")).to_be_focused()  # shown once
    check_state(page, "keys", still=lambda: expect(dialog).to_contain_text("my script"))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_the_admin_dialog_for_one_person(page: Page, auth_server: RealServer) -> None:
    page.goto(f"{auth_server.url}/admin#users")
    page.wait_for_selector("body[data-ready]")
    manage = page.get_by_role("button", name=f"Manage {MEMBER}")
    manage.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#user-dialog")
    expect(dialog).to_be_visible()
    check_state(page, "admin-user-edit", still=lambda: expect(dialog).to_be_visible())
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_an_answer_paused_for_someone_elses_turn(page: Page, auth_server: RealServer) -> None:
    with closing(signed_in(auth_server, ADMIN, ADMIN_PASSWORD)) as admin:
        settings = {"max_tokens": 600, "temperature": 0, "seed": 1}
        made = admin.post(
            "/web/api/conversations",
            json={"model": SMOL, "title": "Story", "settings": settings},
        )
        assert made.status_code == 201, made.text
    with closing(signed_in(auth_server, MEMBER, MEMBER_PASSWORD)) as member:
        key = member.post("/web/api/keys", json={"name": "kim's script"})
        assert key.is_success, key.text
    other = Line(auth_server, headers={"Authorization": f"Bearer {key.json()['key']}"})
    try:
        page.goto(f"{auth_server.url}/#/c/{made.json()['id']}")
        page.wait_for_selector("body[data-ready]")
        set_language(page, "en")
        heard = Listener(page)
        page.fill("#composer-input", "Tell me a long story about a lighthouse keeper.")
        page.press("#composer-input", "Enter")
        page.wait_for_function(WRITING)
        # Kim asks, with nothing running (a raw completion, never paused itself): the admin's
        # answer is paused after its quantum, and waits until she is served.
        other.hold()
        status = page.locator(".msg-assistant .msg-waiting")
        expect(status).to_have_text(PAUSED)
        expect(status).to_be_visible()
        below = "() => document.querySelector('.msg-assistant .msg-body + .msg-waiting') !== null"
        assert page.evaluate(below), "the status comes after what was written so far"
        check_state(page, "paused", still=lambda: expect(status).to_have_text(PAUSED))
        set_language(page, "en")
        heard.wait_for("announcer")
        told = [t for t in heard.texts("announcer") if PAUSED.match(t)]
        assert len(told) == 1, heard.said()  # once, not at each heartbeat of the pause

        other.holders[0].cancel()  # she leaves: the answer goes on where it was
        expect(status).to_be_hidden()
        page.keyboard.press("Escape")  # stop
        expect(page.locator(".msg-assistant").last).to_have_attribute("data-status", "stopped")
    finally:
        other.close()
