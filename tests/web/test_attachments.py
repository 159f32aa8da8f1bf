"""Images in the web app: attached with the button (or pasted), previewed, removable, sent with
the message, read by the server's OCR for the text-only model (shown in "what the model sees"),
and shown in the conversation again after a reload. Real Chromium, server, OCR and smollm2."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.real_server import RealServer
from tests.vision.images import text_png
from tests.web.conftest import create_conversation, js_errors, open_app, shot, wait_for_answer
from tests.web.test_accessibility import assert_accessible

LABEL = "text read by OCR (rapidocr); the model cannot see the image itself"


def test_an_image_is_attached_sent_read_and_shown(
    page: Page, server: RealServer, tmp_path: Path
) -> None:
    note = tmp_path / "note.png"
    note.write_bytes(text_png("Meeting at noon", "Room twelve"))
    other = tmp_path / "other.png"
    other.write_bytes(text_png("Not this one"))
    conversation = create_conversation(server)
    open_app(page, server, conversation["id"])

    page.locator("#attach-file").set_input_files([str(note), str(other)])
    previews = page.locator("#attachments li")
    expect(previews).to_have_count(2)
    expect(previews.first.locator("img")).to_have_attribute("alt", "Image: note.png")
    assert_accessible(page, "attachments-in-composer")
    page.get_by_role("button", name="Remove other.png").click()
    expect(previews).to_have_count(1)
    expect(page.locator("#announcer")).to_have_text("Image removed: other.png")

    page.fill("#composer-input", "When is the meeting?")
    page.press("#composer-input", "Enter")
    wait_for_answer(page)
    expect(page.locator("#attachments")).to_be_hidden()
    shown = page.locator(".msg-user .msg-image img")
    expect(shown).to_have_count(1)
    expect(shown).to_have_attribute("alt", "Image: note.png")
    assert shown.evaluate("img => img.complete && img.naturalWidth") == 900  # served back

    # "What the model sees": the OCR'd words, labelled as such.
    page.click("#settings-button")
    page.click("#prompt-button")
    expect(page.locator("#prompt-output")).to_contain_text(f"[Image 1: {LABEL}]")
    expect(page.locator("#prompt-output")).to_contain_text("Meeting at noon")
    page.keyboard.press("Escape")

    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator(".msg-user .msg-image img")).to_have_count(1)
    shot(page, "image-in-conversation")
    assert not js_errors(page)


def test_a_file_that_is_not_an_image_is_refused_with_its_name(
    page: Page, server: RealServer, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    open_app(page, server)
    page.locator("#attach-file").set_input_files(str(notes))
    expect(page.get_by_role("alert")).to_contain_text("notes.txt is not a PNG, JPEG, WebP or GIF")
    expect(page.locator("#attachments")).to_be_hidden()


def test_a_failed_send_keeps_the_images(page: Page, server: RealServer, tmp_path: Path) -> None:
    note = tmp_path / "note.png"
    note.write_bytes(text_png("Keep me"))
    open_app(page, server, create_conversation(server)["id"])
    page.locator("#attach-file").set_input_files(str(note))
    page.route("**/reply", lambda route: route.fulfill(status=429, headers={"Retry-After": "3"}))
    page.click("#send-button")  # an image alone is a message
    expect(page.get_by_role("alert")).to_contain_text("busy")
    expect(page.locator("#attachments li")).to_have_count(1)
    expect(page.locator(".msg-user")).to_have_count(0)
