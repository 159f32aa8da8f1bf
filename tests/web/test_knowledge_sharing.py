"""Knowledge bases shared by their owner from the web app (with accounts only), and single files
chosen for a conversation rather than whole bases. Real Chromium, server, parsers and encoder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.real_server import RealServer
from tests.web import test_accounts
from tests.web.conftest import create_conversation, get_conversation, js_errors, open_app, watched
from tests.web.test_accessibility import assert_accessible
from tests.web.test_accounts import ADMIN, ADMIN_PASSWORD, ensure_admin, new_context, sign_in
from tests.web.test_knowledge import API, NOTES, new_base, ready_base, signed_in

auth_server = test_accounts.auth_server  # the same fixture: this module's own server

OTHER = """# Bakery

## Opening hours

The bakery on the quay opens at six every morning.
"""


def test_the_owner_shares_a_base_by_name_and_stops(
    browser: Browser, auth_server: RealServer
) -> None:
    ensure_admin(auth_server)
    admin = signed_in(auth_server, ADMIN, ADMIN_PASSWORD)
    made = admin.post(
        "/admin/api/users",
        json={"name": "lou", "password": "lou's long password", "role": "member"},
    )
    assert made.status_code in (201, 409), made.text
    kb = admin.post(API, json={"name": "Harbour notes"}).json()
    context = new_context(browser)
    try:
        page = sign_in(watched(context.new_page()), auth_server, ADMIN, ADMIN_PASSWORD)
        page.get_by_role("button", name="Knowledge bases").click()
        item = page.locator(f'.kb[data-id="{kb["id"]}"]')
        toggle = item.get_by_role("button", name="Share…")
        expect(toggle).to_have_attribute("aria-expanded", "false")
        toggle.focus()
        page.keyboard.press("Enter")
        expect(toggle).to_have_attribute("aria-expanded", "true")
        field = item.get_by_label("Name of a person to share “Harbour notes” with (read only)")
        expect(field).to_be_focused()
        expect(item.locator(".kb-share-none")).to_have_text("Shared with nobody.")

        page.keyboard.type("nobody")
        page.keyboard.press("Enter")
        expect(page.locator("#knowledge-error")).to_have_text(
            "There is nobody called “nobody” on this server."
        )
        expect(field).to_have_attribute("aria-invalid", "true")
        field.fill("")
        page.keyboard.type("lou")
        page.keyboard.press("Enter")
        status = page.locator("#knowledge-status")
        expect(status).to_have_text("“Harbour notes” is now shared with lou, read only.")
        expect(page.locator("#knowledge-error")).to_have_text("")
        people = item.get_by_role("list", name="People who can read Harbour notes")
        expect(people.get_by_role("listitem")).to_have_text(["lou" + "Stop sharing"])
        expect(field).to_be_focused()
        assert admin.get(f"{API}/{kb['id']}").json()["shared_with_names"] == ["lou"]
        assert_accessible(page, "knowledge-sharing")

        item.get_by_role("button", name="Stop sharing with lou").click()
        expect(status).to_have_text("“Harbour notes” is no longer shared with lou.")
        expect(item.locator(".kb-share-none")).to_be_visible()
        expect(field).to_be_focused()
        assert admin.get(f"{API}/{kb['id']}").json()["shared_with"] == []

        # Not (or no longer) the owner: said plainly.
        refused = {"error": {"message": "read only", "type": "permission_error"}}
        page.route("**/shares/**", lambda route: route.fulfill(status=403, json=refused))
        page.keyboard.type("lou")
        page.keyboard.press("Enter")
        expect(page.locator("#knowledge-error")).to_have_text(
            "Only the owner of this knowledge base can share it."
        )
        page.unroute("**/shares/**")
        assert not js_errors(page)
    finally:
        context.close()
        admin.close()


def test_without_accounts_there_is_nothing_to_share(page: Page, server: RealServer) -> None:
    kb = new_base(server, "Unshared")["id"]
    open_app(page, server)
    page.get_by_role("button", name="Knowledge bases").click()
    item = page.locator(f'.kb[data-id="{kb}"]')
    expect(item.get_by_role("heading")).to_have_text("Unshared")
    expect(item.locator(".kb-sharing")).to_have_count(0)
    assert not js_errors(page)


def test_a_conversation_answers_from_a_single_file(
    page: Page, server: RealServer, tmp_path: Path
) -> None:
    notes, bakery = tmp_path / "notes.md", tmp_path / "bakery.md"
    notes.write_text(NOTES)
    bakery.write_text(OTHER)
    base = ready_base(server, "Quay", notes, bakery)
    conversation = create_conversation(server, title="Single file")
    open_app(page, server, conversation["id"])
    page.get_by_role("button", name="Knowledge bases").click()
    item = page.locator(f'.kb[data-id="{base["id"]}"]')
    row = item.locator(".kb-file", has_text="bakery.md")
    expect(row.locator(".kb-file-status")).to_have_text(re.compile(r"^Ready"))
    choice = row.get_by_role("checkbox", name="Use this file only")
    expect(choice).not_to_be_checked()
    choice.focus()
    page.keyboard.press("Space")
    status = page.locator("#knowledge-status")
    expect(status).to_have_text("“bakery.md” is now used in this conversation.")
    file_id = row.get_attribute("data-id")
    stored = get_conversation(server, conversation["id"]).json()
    assert stored["knowledge_files"] == [file_id] and stored["knowledge"] == []
    assert_accessible(page, "knowledge-single-file")
    page.keyboard.press("Escape")
    expect(page.locator("#knowledge-line-text")).to_have_text(
        "Answers use your documents: bakery.md."
    )

    # What the model sees: the chosen file's passages, none of the other file's.
    page.fill("#composer-input", "When does the bakery open?")
    page.click("#settings-button")
    page.click("#prompt-button")
    output = page.locator("#prompt-output")
    expect(output).to_contain_text("[1] bakery.md")
    expect(output).not_to_contain_text("notes.md")
    page.keyboard.press("Escape")

    # Reopened, the choice is still there; unchecked, it is forgotten.
    page.reload()
    page.get_by_role("button", name="Knowledge bases").click()
    choice = item.locator(".kb-file", has_text="bakery.md").get_by_role("checkbox")
    expect(choice).to_be_checked()
    choice.uncheck()
    expect(status).to_have_text("“bakery.md” is no longer used in this conversation.")
    assert get_conversation(server, conversation["id"]).json()["knowledge_files"] == []
    assert not js_errors(page)


def test_the_file_choice_in_french(browser: Browser, server: RealServer, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES)
    base = ready_base(server, "Quai", notes)
    context = browser.new_context(locale="fr-FR", viewport={"width": 1400, "height": 800})
    try:
        page = open_app(watched(context.new_page()), server)
        page.get_by_role("button", name="Bases de connaissances").click()
        item = page.locator(f'.kb[data-id="{base["id"]}"]')
        item.get_by_role("checkbox", name="Utiliser ce fichier seul").check()
        expect(page.locator("#knowledge-status")).to_have_text(
            "« notes.md » est maintenant utilisé dans cette conversation."
        )
        assert_accessible(page, "knowledge-single-file-fr")
        assert not js_errors(page)
    finally:
        context.close()


def test_a_new_chat_sends_its_files_and_forgets_a_deleted_one(
    page: Page, server: RealServer, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES)
    base = ready_base(server, "Lighthouse files", notes)
    open_app(page, server)
    page.get_by_role("button", name="Knowledge bases").click()
    item = page.locator(f'.kb[data-id="{base["id"]}"]')
    row = item.locator(".kb-file", has_text="notes.md")
    row.get_by_role("checkbox", name="Use this file only").check()
    file_id = row.get_attribute("data-id")
    page.keyboard.press("Escape")
    expect(page.locator("#knowledge-line-text")).to_have_text(
        "Answers use your documents: notes.md."
    )

    # The chat is created by its first message, with the file (a busy server then undoes it).
    page.route("**/reply", lambda route: route.fulfill(status=429, headers={"Retry-After": "3"}))
    page.fill("#composer-input", "Who logs the ships?")

    def creation() -> Any:
        return page.expect_request(
            lambda r: r.method == "POST" and r.url.endswith("/web/api/conversations")
        )

    with creation() as created:
        page.press("#composer-input", "Enter")
    assert created.value.post_data_json["knowledge_files"] == [file_id]
    expect(page.get_by_role("alert")).to_contain_text("busy")
    expect(page.locator("#knowledge-line-text")).to_contain_text("notes.md")  # still chosen

    # The file deleted, the chat forgets it.
    page.get_by_role("button", name="Knowledge bases").click()
    item.get_by_role("button", name="Delete notes.md").click()
    confirm = page.get_by_role("dialog", name="Delete this file?")
    confirm.get_by_role("button", name="Delete").click()
    expect(item.locator(".kb-file")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(page.locator("#knowledge-line-text")).not_to_contain_text("notes.md")
    with creation() as again:
        page.press("#composer-input", "Enter")
    assert again.value.post_data_json["knowledge_files"] == []
    assert not js_errors(page)
