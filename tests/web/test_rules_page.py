"""The public rules page (/rules) in a real Chromium: the rules in English and French, the
empty case, and no axe-core violation, light and dark."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.api.test_policy_api import policy_app, with_rules
from tests.conftest import FakeWorld, stock_store
from tests.policy.samples import BILINGUAL
from tests.web.conftest import js_errors, shot, watched

AXE = Axe()


def serve_in_thread(home: Path, rules: str | None) -> Iterator[str]:
    """The app on the fake engine behind real HTTP, in a thread with its own event loop (sync
    Playwright holds this thread's)."""
    stock_store(home)
    app = policy_app(with_rules(home, rules), FakeWorld(client=httpx.AsyncClient()))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        threading.Event().wait(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def ruled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_in_thread(tmp_path_factory.mktemp("ruled"), BILINGUAL)


@pytest.fixture(scope="module")
def unruled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_in_thread(tmp_path_factory.mktemp("unruled"), None)


def open_rules(page: Page, url: str) -> Page:
    page.goto(f"{url}/rules")
    page.wait_for_selector("body[data-ready]")
    return page


def test_the_rules_in_english_then_french(page: Page, ruled: str) -> None:
    open_rules(page, ruled)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert page.title() == "Rules of this server \N{EN DASH} IAForAll"
    expect(page.get_by_role("heading", level=1)).to_have_text("The rules of this server")
    expect(page.get_by_role("status")).to_have_text("3 rules are in force.")
    rules = page.locator(".rule")
    expect(rules).to_have_count(3)
    weapons = rules.nth(0)
    expect(weapons.get_by_role("heading", level=2)).to_have_text(
        "Instructions to make weapons or explosives are refused."
    )
    expect(weapons.locator(".rule-id code")).to_have_text("no-weapons")
    expect(weapons.locator(".action-block")).to_contain_text("Blocks")
    expect(weapons.locator(".keywords li")).to_have_text(
        ["bombe artisanale", "explosif", "pipe bomb"]
    )
    expect(rules.nth(1).locator("dd").nth(1)).to_have_text(
        "your messages and the model\N{RIGHT SINGLE QUOTATION MARK}s answers"
    )
    expect(rules.nth(1).locator("dd code")).to_have_text(r"\b0[1-9](?:[ .]?\d{2}){4}\b")
    shot(page, "rules-en")

    page.select_option("#language-select", "fr")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text("Les règles de ce serveur")
    expect(weapons.get_by_role("heading", level=2)).to_have_text(
        "Les instructions pour fabriquer des armes ou des explosifs sont refusées."
    )
    expect(page.get_by_role("status")).to_have_text("3 règles sont en vigueur.")
    expect(rules.nth(1).locator("dd").nth(1)).to_have_text("vos messages et les réponses du modèle")
    # A rule with one description shows it in every language.
    expect(rules.nth(2).get_by_role("heading", level=2)).to_contain_text("Questions about")
    expect(page.get_by_role("link", name="Retour à la conversation")).to_have_attribute("href", "/")
    shot(page, "rules-fr")

    page.reload()  # the choice is remembered, as in the app
    page.wait_for_selector("body[data-ready]")
    expect(page.get_by_role("heading", level=1)).to_have_text("Les règles de ce serveur")
    assert not js_errors(page)


def test_a_french_browser_gets_french(browser: Browser, ruled: str) -> None:
    context = browser.new_context(locale="fr-CA")
    try:
        page = open_rules(watched(context.new_page()), ruled)
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        expect(page.locator(".rule h2").first).to_have_text(
            "Les instructions pour fabriquer des armes ou des explosifs sont refusées."
        )
    finally:
        context.close()


def test_no_rules_says_so(page: Page, unruled: str) -> None:
    open_rules(page, unruled)
    expect(page.get_by_role("status")).to_have_text(
        "This server has no content rules: nothing you write is blocked, flagged or logged by "
        "a rule."
    )
    expect(page.locator(".rule")).to_have_count(0)
    assert not js_errors(page)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1200, 375])
def test_axe_finds_nothing(browser: Browser, ruled: str, scheme: str, width: int) -> None:
    context = browser.new_context(
        color_scheme=scheme, locale="en-US", viewport={"width": width, "height": 800}
    )
    try:
        page = open_rules(watched(context.new_page()), ruled)
        expect(page.locator(".rule")).to_have_count(3)
        sizes = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert sizes[0] <= sizes[1], sizes  # no horizontal scrolling, even on a phone
        page.wait_for_timeout(250)
        shot(page, f"rules-axe-{scheme}-{width}")
        results = AXE.run(page)
        assert results.violations_count == 0, results.generate_report()
        page.select_option("#language-select", "fr")
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        assert AXE.run(page).violations_count == 0
        assert not js_errors(page)
    finally:
        context.close()
