"""The conversation list: search, rename, delete, export and import, against the real store."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from tests.real_server import RealServer
from tests.web.conftest import (
    SAMPLE,
    create_conversation,
    get_conversation,
    import_conversation,
    js_errors,
    open_app,
    shot,
)


def open_menu(page: Page) -> None:
    button = page.locator("#conversation-menu-button")
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")


def test_search_rename_and_delete(page: Page, server: RealServer) -> None:
    conversation = create_conversation(server, title="Zebra crossing rules")
    open_app(page, server, conversation["id"])
    expect(page.locator("#conversation-title")).to_have_text("Zebra crossing rules")
    page.fill("#search", "zebra CROSSING")  # the server searches case-insensitively
    links = page.locator(".conversation-link")
    expect(links).to_have_count(1)
    expect(links.first).to_contain_text("Zebra crossing rules")
    expect(links.first.locator("time")).to_have_text(re.compile(r"now|second|minute"))
    page.fill("#search", "no conversation has this text 42")
    expect(page.locator("#conversation-empty")).to_have_text("No conversation matches this search.")
    page.fill("#search", "")
    expect(links.first).to_be_visible()

    open_menu(page)
    page.click("#rename-button")
    dialog = page.locator("#rename-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#rename-input")).to_be_focused()
    page.fill("#rename-input", "Road safety notes")
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#conversation-title")).to_have_text("Road safety notes")
    expect(page.locator('.conversation-link[aria-current="page"]')).to_contain_text(
        "Road safety notes"
    )
    assert get_conversation(server, conversation["id"]).json()["title"] == "Road safety notes"
    assert page.title() == "Road safety notes \N{EN DASH} IAForAll"

    open_menu(page)
    page.click("#delete-button")
    confirm = page.locator("#confirm-dialog")
    expect(confirm).to_be_visible()
    expect(page.locator("#confirm-message")).to_contain_text("Road safety notes")
    shot(page, "delete-confirm")
    page.click("#confirm-cancel")  # cancelling keeps it
    expect(confirm).to_be_hidden()
    assert get_conversation(server, conversation["id"]).status_code == 200
    open_menu(page)
    page.click("#delete-button")
    page.click("#confirm-ok")
    expect(page.locator(".empty-state")).to_be_visible()
    expect(page.locator(f'.conversation-link[href="#/c/{conversation["id"]}"]')).to_have_count(0)
    assert "#/c/" not in page.url
    assert get_conversation(server, conversation["id"]).status_code == 404
    assert not js_errors(page)


def test_export_and_import(
    page: Page, context: BrowserContext, server: RealServer, tmp_path: Path
) -> None:
    conversation = import_conversation(server, SAMPLE)
    open_app(page, server, conversation["id"])
    expect(page.locator(".msg")).to_have_count(6)
    # Rendered Markdown, with a Copy button on the code block.
    answer = page.locator(".msg-assistant").first
    expect(answer.locator("strong")).to_have_text("a loop")
    expect(answer.locator("table td").first).to_have_text("2")
    copy = answer.get_by_role("button", name="Copy code")
    expect(copy).to_have_text("Copy")
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy.click()
    expect(copy).to_have_text("Copied")
    expect(page.locator("#announcer")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "for i in range(3):\n    print(i)\n"
    expect(page.locator(".msg-assistant").nth(1).locator(".msg-stopped")).to_have_text("Stopped")
    expect(page.locator(".msg-assistant").nth(2).locator(".msg-error")).to_contain_text(
        "The model stopped unexpectedly."
    )

    open_menu(page)
    with page.expect_download() as markdown_download:
        page.click("#export-markdown")
    markdown = Path(markdown_download.value.path()).read_text()
    assert "Sample with Markdown" in markdown and "for i in range(3):" in markdown
    open_menu(page)
    with page.expect_download() as json_download:
        page.click("#export-json")
    exported = json.loads(Path(json_download.value.path()).read_text())
    assert exported["title"] == "Sample with Markdown"
    assert [m["content"] for m in exported["messages"]] == [
        m["content"] for m in SAMPLE["messages"]
    ]

    saved = tmp_path / "conversation.json"
    saved.write_text(json.dumps(exported))
    page.set_input_files("#import-file", str(saved))
    page.wait_for_url(re.compile(r"#/c/(?!" + conversation["id"] + ")"))
    expect(page.locator("#conversation-title")).to_have_text("Sample with Markdown")
    expect(page.locator(".msg")).to_have_count(6)
    expect(page.locator("#announcer")).to_have_text("Conversation “Sample with Markdown” imported.")
    new_id = page.url.rsplit("/", 1)[1]
    assert (
        get_conversation(server, new_id).json()["messages"][1]["content"]
        == (SAMPLE["messages"][1]["content"])
    )
    shot(page, "imported")

    bad = tmp_path / "not-a-conversation.json"
    bad.write_text("this is not JSON")
    page.set_input_files("#import-file", str(bad))
    expect(page.locator("#error-region")).to_contain_text("not a conversation exported")
    assert not js_errors(page)
