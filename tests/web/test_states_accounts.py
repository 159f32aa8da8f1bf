"""The state catalogue (tests/web/test_states.py), continued on a server with accounts: the API
keys dialog, the admin's dialog for one person, and an answer paused by preemption (one slot,
IAFORALL_PREEMPT: the signed-in person's answer is paused when someone else, with nothing
running, asks). The same checks: axe under the WCAG 2.2 tags in four looks, screenshots, a
keyboard walk, and what screen readers are told."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.real_server import RealServer, start_server, stop_server
from tests.web.conftest import js_errors, watched
from tests.web.states import check_state, new_context
from tests.web.test_accounts import ADMIN, ADMIN_PASSWORD, ensure_admin, sign_in
from tests.web.test_knowledge import signed_in

MEMBER, MEMBER_PASSWORD = "kim", "kim's long password"


@pytest.fixture(scope="module")
def auth_server(model_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """Accounts on (the admin and a member), its own database, one slot, preemption on."""
    home = tmp_path_factory.mktemp("states-auth")
    real = start_server(
        model_home,
        home / "server.log",
        IAFORALL_AUTH="true",
        IAFORALL_DATABASE_URL=f"sqlite:///{home / 'auth.db'}",
        IAFORALL_PARALLEL="1",
        IAFORALL_PREEMPT="true",
        IAFORALL_MEMBER_TOKENS_PER_DAY="100000",
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
