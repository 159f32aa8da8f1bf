"""The published rules' decisions are shown with the answer they concern, in both themes,
accessibly. The stream is crafted (the session server runs without rules); the app's own
handling of it is what is tested."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.real_server import SMOL, RealServer
from tests.web.conftest import create_conversation, open_app, watched
from tests.web.test_accessibility import assert_accessible

REPLY = "**/web/api/conversations/*/reply"

WARNED = {
    "rule": "phone-numbers",
    "description": "Phone numbers are personal data.",
    "action": "warn",
    "applies_to": "input",
    "where": "messages[0]",
    "excerpt": "06 12 34 56 78",
}


def stream() -> str:
    user = {
        "id": "u1", "role": "user", "content": "Call 06 12 34 56 78", "model": None,
        "status": "complete", "error": None, "usage": None,
        "created_at": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    answer = {**user, "id": "a1", "role": "assistant", "content": "I cannot call.", "model": SMOL}
    start = {"user_message": user, "assistant_message_id": "a1", "decisions": [WARNED]}
    logged = {**WARNED, "rule": "homework", "action": "log", "applies_to": "output",
              "description": "Homework questions are counted."}  # fmt: skip
    chunk = {"choices": [{"index": 0, "delta": {"content": "I cannot call."}}]}
    return (
        f"event: start\ndata: {json.dumps(start)}\n\n"
        f"data: {json.dumps(chunk)}\n\n"
        f"event: decisions\ndata: {json.dumps({'decisions': [logged]})}\n\n"
        f"event: done\ndata: {json.dumps({'message': answer})}\n\n"
        "data: [DONE]\n\n"
    )


@pytest.fixture(params=["light", "dark"])
def themed(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    context = browser.new_context(color_scheme=request.param, locale="en-US")
    yield watched(context.new_page())
    context.close()


def test_decisions_are_shown_with_the_answer(themed: Page, server: RealServer) -> None:
    page = themed
    open_app(page, server, create_conversation(server)["id"])
    page.route(
        REPLY,
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=stream()),
    )
    page.fill("#composer-input", "Call 06 12 34 56 78")
    page.press("#composer-input", "Enter")
    note = page.locator(".msg-assistant .msg-rules")
    expect(note).to_contain_text("The server's published rules applied here:")
    expect(note.locator("li")).to_have_count(2)
    expect(note.locator("li").first).to_have_text(
        "Rule phone-numbers (a warning): on your message. Phone numbers are personal data."
    )
    expect(note.locator("li").nth(1)).to_contain_text("Rule homework (logged): on this answer.")
    expect(note.get_by_role("link", name="See every rule")).to_have_attribute("href", "/rules")
    scheme = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    assert_accessible(page, f"rules-in-chat-{'dark' if scheme else 'light'}")
