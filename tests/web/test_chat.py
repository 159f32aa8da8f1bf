"""Chatting with the real smollm2 through the browser: streaming, stop, transparency, keyboard."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Route, expect

from tests.real_server import SMOL, RealServer
from tests.web.conftest import (
    create_conversation,
    get_conversation,
    js_errors,
    open_app,
    shot,
    wait_for_answer,
)


def test_send_streams_an_answer_and_reload_reopens_it(page: Page, server: RealServer) -> None:
    open_app(page, server)
    expect(page.locator(".empty-state")).to_be_visible()
    shot(page, "empty-chat")
    # A new chat exists only on screen: its settings wait for the first message.
    page.click("#settings-button")
    expect(page.locator("#settings-dialog")).to_be_visible()
    page.fill("#setting-max_tokens", "32")
    page.fill("#setting-temperature", "0")
    page.click("#settings-save")
    expect(page.locator("#settings-status")).to_have_text("Saved.")
    page.keyboard.press("Escape")
    expect(page.locator("#settings-dialog")).to_be_hidden()
    assert "#/c/" not in page.url

    page.fill("#composer-input", "What is the capital of France?")
    page.press("#composer-input", "Enter")
    answer = page.locator(".msg-assistant").last
    expect(answer).to_have_attribute("aria-busy", "true")
    expect(page.locator("#stop-button")).to_be_visible()
    assert page.locator("#messages").get_attribute("aria-live") is None  # not announced per token
    text = wait_for_answer(page)
    assert text.strip()
    expect(page.locator("#composer-input")).to_have_value("")
    expect(answer).to_have_attribute("data-status", "complete")
    expect(page.locator(".msg-user .msg-body")).to_have_text("What is the capital of France?")
    match = re.search(r"#/c/([0-9a-f]+)$", page.url)
    assert match, page.url
    stored = get_conversation(server, match.group(1)).json()
    assert stored["settings"]["max_tokens"] == 32 and stored["settings"]["temperature"] == 0
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"]
    assert stored["messages"][1]["usage"]["completion_tokens"] <= 32
    # Announced once, as a whole, when it ended.
    expect(page.locator("#announcer")).to_have_text(stored["messages"][1]["content"].strip())
    shot(page, "chat-answer")

    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator(".msg-assistant .msg-body")).to_have_text(
        stored["messages"][1]["content"].strip()
    )
    link = page.locator(f'.conversation-link[href="#/c/{stored["id"]}"]')
    expect(link).to_have_attribute("aria-current", "page")
    expect(link.locator(".conversation-title")).to_have_text(stored["title"])
    assert stored["title"].startswith("What is the capital")
    assert not js_errors(page)


def test_the_model_sees_exactly_the_conversation(page: Page, server: RealServer) -> None:
    conversation = create_conversation(server, system_prompt="Answer in one word.")
    open_app(page, server, conversation["id"])
    page.fill("#composer-input", "Name a colour")
    page.click("#settings-button")
    expect(page.locator("#system-prompt")).to_have_value("Answer in one word.")
    expect(page.locator("#setting-max_tokens")).to_have_value("24")
    expect(page.locator("#system-prompt-note")).to_contain_text("nothing else is added")
    page.click("#prompt-button")
    prompt = page.locator("#prompt-output")
    expect(prompt).to_be_visible()
    text = prompt.inner_text()
    assert "Answer in one word." in text and "Name a colour" in text
    assert "<|im_start|>" in text  # the model's own chat template, shown as is
    shot(page, "settings-prompt")
    page.click("#settings-close")
    expect(page.locator("#composer-input")).to_have_value("Name a colour")


def test_stop_mid_stream_keeps_the_partial_answer(page: Page, server: RealServer) -> None:
    conversation = create_conversation(
        server, settings={"max_tokens": 1000, "temperature": 0, "seed": 1}
    )
    open_app(page, server, conversation["id"])
    page.fill("#composer-input", "Count from 1 to 1000, one number per line.")
    page.press("#composer-input", "Enter")
    body = page.locator(".msg-assistant .msg-body").last
    expect(body).not_to_be_empty(timeout=30_000)  # the answer has started
    page.click("#stop-button")
    answer = page.locator(".msg-assistant").last
    expect(answer).to_have_attribute("data-status", "stopped")
    expect(answer.locator(".msg-stopped")).to_have_text("Stopped")
    expect(answer).not_to_have_attribute("aria-busy", "true")
    expect(page.locator("#send-button")).to_be_visible()
    expect(page.locator("#announcer")).to_have_text("Stopped")
    partial = body.inner_text()
    shot(page, "chat-stopped")

    def stored_stopped() -> bool:
        messages = get_conversation(server, conversation["id"]).json()["messages"]
        return len(messages) == 2 and messages[1]["status"] == "stopped"

    server.wait_for(stored_stopped, 10, "the stopped answer to be stored")
    stored = get_conversation(server, conversation["id"]).json()["messages"][1]
    usage = stored["usage"] or {}
    assert stored["content"] and usage.get("completion_tokens", 0) < 1000
    assert partial.strip()  # what was shown before the stop stays on screen
    # The stream really ended: the server is not still generating for us.
    server.wait_for(lambda: (server.model("smollm2:135m") or {}).get("running") == 0, 10, "idle")
    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator(".msg-assistant .msg-stopped")).to_have_text("Stopped")
    expect(page.locator(".msg-assistant .msg-body")).not_to_be_empty()


def test_keyboard_only(page: Page, server: RealServer) -> None:
    conversation = create_conversation(server)
    open_app(page, server, conversation["id"])
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Shift+Escape")
    assert page.evaluate("document.activeElement.id") == "composer-input"
    page.keyboard.type("Say hello.")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("Thanks")
    page.keyboard.press("Enter")
    wait_for_answer(page)
    expect(page.locator(".msg-user .msg-body")).to_have_text("Say hello.\nThanks")
    # Regenerate and edit are reachable with Tab from the message box (Shift+Tab backwards).
    page.keyboard.press("Control+Shift+O")
    expect(page.locator(".empty-state")).to_be_visible()
    assert "#/c/" not in page.url
    assert page.evaluate("document.activeElement.id") == "composer-input"
    page.keyboard.press("Control+/")
    dialog = page.locator("#help-dialog")
    expect(dialog).to_be_visible()
    assert page.evaluate("document.activeElement.closest('dialog')?.id") == "help-dialog"
    expect(dialog.locator("tbody tr")).to_have_count(8)
    shot(page, "help-dialog")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.evaluate("document.activeElement.id") == "composer-input"
    # Tab order starts with the skip link, then the header, the sidebar, the conversation.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "send-button"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "handsfree-button"
    # The image and microphone buttons come just before the message box.
    page.keyboard.press("Shift+Escape")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "mic-button"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "attach-button"
    page.reload()
    page.wait_for_selector("body[data-ready]")
    order = []
    for _ in range(9):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.className"))
    assert order[:8] == [
        "skip-link",
        "model-select",
        "language-select",
        "knowledge-button",
        "settings-button",
        "help-button",
        "user-menu-button",
        "new-chat",
    ], order
    assert not js_errors(page)


def test_regenerate_and_edit(page: Page, server: RealServer) -> None:
    conversation = create_conversation(server, settings={"max_tokens": 12, "temperature": 0})
    open_app(page, server, conversation["id"])
    page.fill("#composer-input", "Name a fruit.")
    page.press("#composer-input", "Enter")
    wait_for_answer(page)
    first_id = page.locator(".msg-assistant").last.get_attribute("data-id")
    page.get_by_role("button", name="Regenerate").click()
    wait_for_answer(page)
    expect(page.locator(".msg-assistant")).to_have_count(1)
    assert page.locator(".msg-assistant").last.get_attribute("data-id") != first_id
    page.get_by_role("button", name="Edit").click()
    expect(page.locator("#edit-banner")).to_be_visible()
    expect(page.locator("#composer-input")).to_have_value("Name a fruit.")
    page.fill("#composer-input", "Name a vegetable.")
    page.press("#composer-input", "Enter")
    wait_for_answer(page)
    expect(page.locator(".msg-user")).to_have_count(1)
    expect(page.locator(".msg-user .msg-body")).to_have_text("Name a vegetable.")
    expect(page.locator("#edit-banner")).to_be_hidden()
    stored = get_conversation(server, conversation["id"]).json()["messages"]
    assert [m["content"] for m in stored if m["role"] == "user"] == ["Name a vegetable."]


def test_waiting_status_then_escape_stops(page: Page, server: RealServer) -> None:
    """Before the first token the status says why we wait; Escape stops; the text comes back."""
    conversation = create_conversation(server)
    open_app(page, server, conversation["id"])
    loading = {"default_model": SMOL, "models": [{"name": SMOL, "state": "loading", "queued": 0}]}
    page.route("**/health", lambda route: route.fulfill(json=loading))
    held: list[Route] = []
    page.route("**/reply", lambda route: held.append(route))  # never answered: still loading
    page.fill("#composer-input", "Are you there?")
    page.press("#composer-input", "Enter")
    answer = page.locator(".msg-assistant").last
    expect(answer.locator(".msg-waiting")).to_have_text("Loading the model…")
    expect(answer).to_have_attribute("aria-busy", "true")
    shot(page, "chat-loading-model")
    page.keyboard.press("Escape")
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.locator("#composer-input")).to_have_value("Are you there?")
    expect(page.locator("#announcer")).to_have_text("Stopped")
    assert held, "the reply was requested"
    assert get_conversation(server, conversation["id"]).json()["messages"] == []


def test_the_model_picker_offers_only_models_that_chat(page: Page, server: RealServer) -> None:
    """Not the sentence encoder (it answered 404 when picked), Whisper, the voices or OCR."""
    open_app(page, server)
    offered = page.locator("#model-select option").evaluate_all("os => os.map(o => o.value)")
    assert SMOL in offered
    assert not {"use:multilingual", "tts-1", "rapidocr"} & set(offered), offered
    assert not [m for m in offered if m.startswith("whisper:")], offered
