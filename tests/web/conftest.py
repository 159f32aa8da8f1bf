"""Real Chromium (Debian's, via Playwright) against the real server, and small helpers.

Sync Playwright runs its own event loop, so these tests and fixtures are plain sync functions.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.real_server import SMOL, RealServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


# Per module, not per session: while sync Playwright is started, its event loop counts as the
# thread's running loop, and the async tests of other folders (pytest-asyncio) could not run.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the web app tests need Debian's Chromium. "
            "Run `scripts/install-system-deps.sh` as root, then the tests again."
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        # The app's service worker (the shell kept for offline use) would hide the page's
        # requests from `page.route` and fill a cache in every fresh context: contexts go
        # without it unless a test asks (tests/web/test_installable.py does).
        browser.new_context = functools.partial(  # type: ignore[method-assign]
            browser.new_context, service_workers="block"
        )
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile (no stored language or drafts), English, a desktop-sized window."""
    ctx = browser.new_context(locale="en-US", viewport={"width": 1200, "height": 800})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return watched(context.new_page())


def watched(page: Page) -> Page:
    """A page whose script errors fail the test (kept on the page, checked by `open_app`)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


def open_app(page: Page, server: RealServer, conversation_id: str | None = None) -> Page:
    url = f"{server.url}/" + (f"#/c/{conversation_id}" if conversation_id else "")
    page.goto(url)
    page.wait_for_selector("body[data-ready]")
    return page


def js_errors(page: Page) -> list[str]:
    # The 404 of a deleted conversation and aborted/failed fetches that tests provoke on purpose
    # show as console errors from the browser itself; only the app's own exceptions count.
    return [e for e in page.js_errors if "Failed to load resource" not in e]  # type: ignore[attr-defined]


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def create_conversation(server: RealServer, **fields: Any) -> dict[str, Any]:
    """A conversation made through the API (short answers unless told: 2 cores)."""
    body = {"model": SMOL, "settings": {"max_tokens": 24, "temperature": 0, "seed": 1}, **fields}
    response = httpx.post(f"{server.url}/web/api/conversations", json=body, timeout=10)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def import_conversation(server: RealServer, document: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/web/api/conversations/import", json=document, timeout=10)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def get_conversation(server: RealServer, conversation_id: str) -> httpx.Response:
    return httpx.get(f"{server.url}/web/api/conversations/{conversation_id}", timeout=10)


def wait_for_answer(page: Page, timeout: float = 60_000) -> str:
    """Wait until the last answer has finished streaming; its text."""
    page.wait_for_selector(".msg-assistant[aria-busy]", state="detached", timeout=timeout)
    page.wait_for_selector("#send-button:visible")
    return page.locator(".msg-assistant .msg-body").last.inner_text()


SAMPLE = {
    "format": "iaforall.conversation",
    "version": 1,
    "title": "Sample with Markdown",
    "model": SMOL,
    "system_prompt": "",
    "settings": {"temperature": 0, "top_p": None, "max_tokens": 24, "seed": 1},
    "messages": [
        {"role": "user", "content": "Show me a Python loop, please."},
        {
            "role": "assistant",
            "content": (
                "Here is **a loop**, see [the docs](https://docs.python.org/3/):\n\n"
                "```python\nfor i in range(3):\n    print(i)\n```\n\n"
                "| n | square |\n|---|---|\n| 2 | 4 |\n\n- one\n- two\n\n> quoted"
            ),
            "model": SMOL,
            "status": "complete",
        },
        {"role": "user", "content": "And a long story?"},
        {"role": "assistant", "content": "Once upon a time", "model": SMOL, "status": "stopped"},
        {"role": "user", "content": "Again?"},
        {
            "role": "assistant",
            "content": "It was",
            "model": SMOL,
            "status": "error",
            "error": "The model stopped unexpectedly.",
        },
    ],
}
