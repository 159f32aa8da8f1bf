"""axe-core finds nothing in each state, light and dark; the layout holds on phones and at 200 %."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.real_server import RealServer
from tests.web.conftest import (
    SAMPLE,
    create_conversation,
    import_conversation,
    js_errors,
    open_app,
    shot,
    wait_for_answer,
    watched,
)

AXE = Axe()


def assert_accessible(page: Page, name: str) -> None:
    page.wait_for_timeout(250)  # let transitions settle so colours are final
    shot(page, name)
    results = AXE.run(page)
    assert results.violations_count == 0, f"{name}:\n{results.generate_report()}"


@pytest.fixture(params=["light", "dark"])
def themed(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        color_scheme=request.param, locale="en-US", viewport={"width": 1200, "height": 800}
    )
    page = watched(context.new_page())
    page.scheme = request.param  # type: ignore[attr-defined]
    yield page
    context.close()


def test_axe_in_every_state(themed: Page, server: RealServer) -> None:
    page, scheme = themed, themed.scheme  # type: ignore[attr-defined]
    open_app(page, server)
    assert_accessible(page, f"axe-empty-{scheme}")

    conversation = import_conversation(server, SAMPLE)
    page.goto(f"{server.url}/#/c/{conversation['id']}")
    expect(page.locator(".msg")).to_have_count(6)
    assert_accessible(page, f"axe-answers-{scheme}")

    page.fill("#search", "Sample with")
    expect(page.locator(".conversation-snippet").first).to_be_visible()
    page.locator("#conversation-menu-button").click()
    assert_accessible(page, f"axe-list-and-menu-{scheme}")
    page.keyboard.press("Escape")

    page.fill("#composer-input", "A draft")
    page.click("#settings-button")
    page.click("#prompt-button")
    expect(page.locator("#prompt-output")).to_be_visible()
    assert_accessible(page, f"axe-settings-{scheme}")
    page.keyboard.press("Escape")

    page.keyboard.press("Control+/")
    assert_accessible(page, f"axe-help-{scheme}")
    page.keyboard.press("Escape")

    page.route("**/reply", lambda route: route.fulfill(status=429, headers={"Retry-After": "3"}))
    page.press("#composer-input", "Enter")
    expect(page.get_by_role("alert")).to_contain_text("busy")
    assert_accessible(page, f"axe-error-{scheme}")
    assert not js_errors(page)


def test_phone_width(browser: Browser, server: RealServer) -> None:
    context = browser.new_context(
        viewport={"width": 375, "height": 740}, locale="en-US", has_touch=True, is_mobile=True
    )
    try:
        page = watched(context.new_page())
        conversation = create_conversation(server, title="Phone check")
        open_app(page, server, conversation["id"])
        no_horizontal_scroll(page)
        toggle = page.locator("#sidebar-toggle")
        expect(toggle).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(page.locator("#sidebar")).to_be_hidden()
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(page.locator("#sidebar")).to_be_visible()
        expect(page.locator("#new-chat")).to_be_focused()
        assert_accessible(page, "phone-sidebar")
        page.locator(f'.conversation-link[href="#/c/{conversation["id"]}"]').click()
        expect(page.locator("#sidebar")).to_be_hidden()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        page.fill("#composer-input", "Hi!")
        page.locator("#send-button").tap()
        wait_for_answer(page)
        no_horizontal_scroll(page)
        for target in ("#send-button", "#sidebar-toggle", "#settings-button", ".msg-action"):
            box = page.locator(target).first.bounding_box()
            assert box and box["width"] >= 24 and box["height"] >= 24, (target, box)
        shot(page, "phone-chat")
        assert not js_errors(page)
    finally:
        context.close()


def test_zoom_200_percent(browser: Browser, server: RealServer) -> None:
    """A 1280 px window at 200 % zoom lays out as 640 CSS px, each drawn with 2 device pixels."""
    context = browser.new_context(
        viewport={"width": 640, "height": 400}, device_scale_factor=2, locale="fr-FR"
    )
    try:
        page = watched(context.new_page())
        conversation = import_conversation(server, SAMPLE)
        open_app(page, server, conversation["id"])
        no_horizontal_scroll(page)
        expect(page.locator("#composer-input")).to_be_in_viewport()
        page.click("#settings-button")
        dialog = page.locator("#settings-dialog")
        box = dialog.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 640
        page.locator("#prompt-button").scroll_into_view_if_needed()
        expect(page.locator("#prompt-button")).to_be_in_viewport()
        shot(page, "zoom-200-settings")
        page.keyboard.press("Escape")
        no_horizontal_scroll(page)
        shot(page, "zoom-200")
    finally:
        context.close()


def no_horizontal_scroll(page: Page) -> None:
    sizes = page.evaluate(
        """() => {
          const root = document.documentElement, list = document.getElementById('messages');
          return {scroll: root.scrollWidth, client: root.clientWidth,
                  main: list.scrollWidth - list.clientWidth};
        }"""
    )
    assert sizes["scroll"] <= sizes["client"], sizes
    assert sizes["main"] <= 0, sizes


def test_reduced_motion_stops_animations(browser: Browser, server: RealServer) -> None:
    context = browser.new_context(reduced_motion="reduce")
    try:
        page = open_app(context.new_page(), server)
        duration = page.evaluate(
            "() => { const p = document.createElement('p'); p.className = 'msg-waiting';"
            " document.body.append(p); return getComputedStyle(p, '::after').animationName; }"
        )
        assert duration == "none"
    finally:
        context.close()
