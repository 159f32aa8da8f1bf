"""Failures in plain language, the typed text never lost, and Retry that works.

The failures are made with `page.route` (a crafted answer instead of the real one) so they are
deterministic; the retry that succeeds goes to the real server.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
from playwright.sync_api import Page, Route, expect

from tests.real_server import SMOL, RealServer
from tests.web.conftest import (
    create_conversation,
    get_conversation,
    open_app,
    shot,
    wait_for_answer,
)

REPLY = "**/web/api/conversations/*/reply"


def error_body(code: str, message: str) -> str:
    return json.dumps(
        {"error": {"message": message, "type": "server_error", "param": None, "code": code}}
    )


def busy(retry_after: int) -> Callable[[Route], None]:
    """A reply answered "busy", as the real server does when its queue is full."""

    def answer(route: Route) -> None:
        route.fulfill(
            status=429,
            headers={"Retry-After": str(retry_after), "Content-Type": "application/json"},
            body=error_body("server_busy", "Too many requests are waiting."),
        )

    return answer


def test_busy_then_network_loss_then_retry_succeeds(page: Page, server: RealServer) -> None:
    conversation = create_conversation(server, settings={"max_tokens": 12, "temperature": 0})
    open_app(page, server, conversation["id"])
    page.route(REPLY, busy(retry_after=7))
    typed = "Please keep this text safe."
    page.fill("#composer-input", typed)
    page.press("#composer-input", "Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The server is busy; try again in 7 seconds.")
    expect(page.locator("#composer-input")).to_have_value(typed)  # put back
    expect(page.locator(".msg")).to_have_count(0)  # nothing was stored, nothing is shown
    expect(page.locator(".empty-state")).to_be_visible()
    shot(page, "error-busy")
    # The unsent text survives a reload too.
    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#composer-input")).to_have_value(typed)

    page.unroute(REPLY)
    page.route(REPLY, lambda route: route.abort("internetdisconnected"))
    page.press("#composer-input", "Enter")
    expect(alert).to_contain_text("Cannot reach the server")
    expect(page.locator("#composer-input")).to_have_value(typed)
    shot(page, "error-network")

    page.unroute(REPLY)
    alert.get_by_role("button", name="Retry").click()
    wait_for_answer(page)
    expect(page.locator(".msg-user .msg-body")).to_have_text(typed)
    expect(page.locator("#composer-input")).to_have_value("")
    expect(page.locator("#error-region")).to_be_empty()
    stored = get_conversation(server, conversation["id"]).json()["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    page.reload()  # the draft was forgotten once the server had the message
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#composer-input")).to_have_value("")


def test_a_failed_first_message_leaves_no_empty_conversation(
    page: Page, server: RealServer
) -> None:
    def ids() -> set[str]:
        listed = httpx.get(f"{server.url}/web/api/conversations", timeout=10).json()["data"]
        return {c["id"] for c in listed}

    before = ids()
    open_app(page, server)  # a new chat: it exists on the server only once answered
    page.route(REPLY, busy(retry_after=3))
    typed = "A first message the server was too busy for."
    page.fill("#composer-input", typed)
    page.press("#composer-input", "Enter")
    expect(page.get_by_role("alert")).to_contain_text("try again in 3 seconds")
    expect(page.locator("#composer-input")).to_have_value(typed)
    expect(page).to_have_url(f"{server.url}/")  # back to the unsaved new chat
    assert ids() == before
    page.reload()  # the draft is still the new chat's
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#composer-input")).to_have_value(typed)


def test_engine_restarting_and_timeout(page: Page, server: RealServer) -> None:
    conversation = create_conversation(server)
    open_app(page, server, conversation["id"])
    statuses = iter([(503, "engine_unavailable"), (504, "timeout")])

    def fail(route: Route) -> None:
        status, code = next(statuses)
        route.fulfill(status=status, content_type="application/json", body=error_body(code, "x"))

    page.route(REPLY, fail)
    page.fill("#composer-input", "Hello")
    page.press("#composer-input", "Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The model stopped unexpectedly and is restarting")
    alert.get_by_role("button", name="Retry").click()
    expect(alert).to_contain_text("The model took too long to answer")
    expect(page.locator("#composer-input")).to_have_value("Hello")
    alert.get_by_role("button", name="Dismiss").click()
    expect(page.locator("#error-region")).to_be_empty()
    expect(page.locator("#composer-input")).to_be_focused()


def test_error_in_the_middle_of_an_answer(page: Page, server: RealServer) -> None:
    conversation = create_conversation(server)
    open_app(page, server, conversation["id"])
    user = {
        "id": "u1",
        "role": "user",
        "content": "Tell me",
        "model": None,
        "status": "complete",
        "error": None,
        "usage": None,
        "created_at": "2026-01-01T00:00:00Z",
    }
    answer = {
        "id": "a1",
        "role": "assistant",
        "content": "Half an ans",
        "model": SMOL,
        "status": "error",
        "error": "The engine stopped.",
        "usage": None,
        "created_at": "2026-01-01T00:00:01Z",
    }
    chunk = {"choices": [{"index": 0, "delta": {"content": "Half an ans"}}]}
    start = {"user_message": user, "assistant_message_id": "a1"}
    stream = (
        f"event: start\ndata: {json.dumps(start)}\n\n"
        f"data: {json.dumps(chunk)}\n\n"
        f"data: {error_body('engine_unavailable', 'The engine stopped.')}\n\n"
        f"event: done\ndata: {json.dumps({'message': answer})}\n\n"
        "data: [DONE]\n\n"
    )
    page.route(
        REPLY,
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=stream),
    )
    page.fill("#composer-input", "Tell me")
    page.press("#composer-input", "Enter")
    expect(page.get_by_role("alert")).to_contain_text(
        "The answer was interrupted: The engine stopped."
    )
    last = page.locator(".msg-assistant").last
    expect(last).to_have_attribute("data-status", "error")
    expect(last.locator(".msg-body")).to_have_text("Half an ans")
    expect(last.locator(".msg-error")).to_contain_text("The engine stopped.")
    expect(page.locator("#announcer")).to_have_text("The answer was interrupted.")
    expect(page.locator("#composer-input")).to_have_value("")  # the message itself was stored
    shot(page, "error-mid-stream")
