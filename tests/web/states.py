"""The state catalogue's tools: axe under the WCAG 2.2 A/AA tags and best practices in each
look (theme, language, size), a keyboard walk, what screen readers are told, and real requests
that fill the fair queue.

Looks: four, not all eight combinations of light/dark x English/French x phone/zoom: an
orthogonal array in which every pair of values (light+French, dark+phone, French+zoom…) occurs
once, which is what interactions between two factors need (a contrast that fails only in dark
French at 375 px would need a three-way interaction). Each look is applied within one page: the
colour scheme by emulation, the language by the app's own setting, the size by the viewport.

Zoom: a 640 x 400 viewport in a context with deviceScaleFactor 2 is exactly what a 1280 x 800
window at 200 % zoom lays out (640 CSS px, each drawn with 2 device pixels). CSS `zoom` would not
do: media queries keep seeing the wide viewport, so the narrow layout a zooming user gets never
shows. The phone size is 375 x 667 at the same scale factor (a 2x phone)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from axe_playwright_python.base import AxeResults
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.real_server import SMOL, RealServer, long_completion
from tests.web.conftest import shot

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
AXE_SCRIPT = Axe().axe_script
SIZES = {"phone": (375, 667), "zoom": (640, 400)}


@dataclass(frozen=True)
class Look:
    scheme: Literal["light", "dark"]
    language: Literal["en", "fr"]
    size: Literal["phone", "zoom"]

    def __str__(self) -> str:
        return f"{self.scheme}-{self.language}-{self.size}"


# Every pair of values once; ordered so that the language changes once per state.
LOOKS = (
    Look("light", "en", "phone"),
    Look("dark", "en", "zoom"),
    Look("dark", "fr", "phone"),
    Look("light", "fr", "zoom"),
)


def new_context(browser: Browser) -> BrowserContext:
    """English, 2 device pixels per CSS pixel, and reduced motion (transitions would otherwise
    have to settle before each contrast check; the motion test turns it back on)."""
    context = browser.new_context(
        locale="en-US",
        viewport={"width": 375, "height": 667},
        device_scale_factor=2,
        reduced_motion="reduce",
    )
    context.set_default_timeout(15_000)
    return context


def set_language(page: Page, code: str) -> None:
    """The app's own language setting (the topbar's select), also while a dialog makes it inert."""
    page.evaluate(
        """code => {
          const select = document.getElementById('language-select');
          if (select.value === code) return;
          select.value = code;
          select.dispatchEvent(new Event('change'));
        }""",
        code,
    )
    expect(page.locator("html")).to_have_attribute("lang", code)


def show(page: Page, look: Look) -> None:
    page.emulate_media(color_scheme=look.scheme)
    width, height = SIZES[look.size]
    page.set_viewport_size({"width": width, "height": height})
    set_language(page, look.language)


def axe_clean(page: Page, name: str) -> None:
    """axe-core with the WCAG 2.0/2.1/2.2 A and AA tags plus best practices (runOnly by tag also
    runs the rules off by default, such as target-size, WCAG 2.2's 2.5.8)."""
    if not page.evaluate("() => 'axe' in window"):
        page.evaluate(AXE_SCRIPT)
    options = {"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]}
    results = AxeResults(page.evaluate("options => axe.run(document, options)", options))
    assert results.violations_count == 0, f"{name}:\n{results.generate_report()}"


def check_state(
    page: Page,
    name: str,
    *,
    still: Callable[[], None] | None = None,
    looks: tuple[Look, ...] = LOOKS,
    keyboard: bool = True,
) -> None:
    """The state as it is now: axe-clean and photographed in each look, then walked with the
    keyboard; `still` asserts afterwards that the state lasted through all of it."""
    for look in looks:
        show(page, look)
        axe_clean(page, f"{name} ({look})")
        shot(page, f"state-{name}-{look}")
    if keyboard:
        walk_keyboard(page, name)
    if still is not None:
        still()


# ---------- the keyboard ----------

DESCRIBE = """(el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
  + (typeof el.className === 'string' && el.className ? '.' + el.className.split(' ')[0] : '')
  + ' "' + (el.getAttribute('aria-label') || el.textContent || el.value || '')
    .replace(/\\s+/g, ' ').trim().slice(0, 40) + '"'"""

RECORD_FOCUS = (
    """() => {
  window.__focus = [];
  if (window.__focusRecorder) return;
  window.__focusRecorder = true;
  const what = """
    + DESCRIBE
    + """;
  document.addEventListener('focusin', (event) => {
    const el = event.target;
    const box = el.getBoundingClientRect();
    let ring = false; // an outline of 2 px or more, on it or on the box drawn around it
    for (let n = el, i = 0; n && i < 3 && !ring; n = n.parentElement, i++) {
      const style = getComputedStyle(n);
      ring = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
    }
    const x = Math.min(Math.max(box.left + box.width / 2, 0), innerWidth - 1);
    const y = Math.min(Math.max(box.top + box.height / 2, 0), innerHeight - 1);
    const top = document.elementFromPoint(x, y);
    window.__focus.push({
      el,
      what: what(el),
      // its place in the document now (lists redrawn meanwhile keep their order)
      at: [...document.querySelectorAll('*')].indexOf(el),
      ring,
      visible: el.matches(':focus-visible'),
      inView: box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
        && box.top < innerHeight && box.left < innerWidth,
      covered: !(top && (el.contains(top) || top.contains(el)
        || top.closest('label')?.control === el)),
    });
  }, true);
}"""
)

FOCUS_WALKED = (
    """() => {
  const what = """
    + DESCRIBE
    + """;
  const seen = window.__focus;
  const modal = document.querySelector('dialog[open]:modal');
  const scope = modal || document;
  const tabbable = [...scope.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])')]
    .filter((el) => !el.disabled && el.tabIndex >= 0 && !el.closest('[inert], dialog:not([open])')
      && el.checkVisibility({ visibilityProperty: true }) && (modal || !el.closest('dialog')));
  // The same element, or (when a list was redrawn under it) one described the same.
  const same = (entry, other) => entry.el === other.el
    || ((!entry.el.isConnected || !other.el.isConnected) && entry.what === other.what);
  const back = seen.findIndex((entry, i) => i > 0 && same(entry, seen[0]));
  const cycle = back > 0 ? seen.slice(0, back) : seen;
  let wraps = 0;
  for (let i = 1; i < cycle.length; i++) if (cycle[i].at <= cycle[i - 1].at) wraps++;
  const names = (entries) => entries.map((e) => e.what);
  return {
    closed: back > 0,
    wraps,
    order: names(cycle),
    unringed: names(cycle.filter((e) => !e.ring || !e.visible)),
    hidden: names(cycle.filter((e) => !e.inView)),
    covered: names(cycle.filter((e) => e.covered)),
    outside: names(cycle.filter((e) => modal && !modal.contains(e.el))),
    missed: tabbable.map((el) => ({ el, what: what(el) }))
      .filter((entry) => !cycle.some((e) => same(e, entry))).map((entry) => entry.what),
  };
}"""
)


def walk_keyboard(page: Page, name: str, limit: int = 200) -> list[str]:
    """Tab until focus comes back where it started: every control on the way reached in
    document order (one wrap from the end to the start), each with a visible ring, on screen and
    not covered; none missed; inside the open modal dialog only. The order walked."""
    page.evaluate(RECORD_FOCUS)
    walked: dict[str, Any] = {}
    for _ in range(0, limit, 10):
        for _ in range(10):
            page.keyboard.press("Tab")
        walked = page.evaluate(FOCUS_WALKED)
        if walked["closed"]:
            break
    assert walked["closed"], f"{name}: focus never came back after {limit} Tabs: {walked}"
    assert walked["wraps"] <= 1, f"{name}: focus jumps against the reading order: {walked['order']}"
    for problem in ("unringed", "hidden", "covered", "outside", "missed"):
        assert not walked[problem], f"{name}: {problem} {walked[problem]}\n{walked['order']}"
    order: list[str] = walked["order"]
    return order


# ---------- what screen readers are told ----------

LISTEN = """() => {
  window.__said = [];
  window.__frames = 0;
  if (window.__listening) return;
  window.__listening = true;
  // The live region a node is in, as Chromium computes it: aria-live (off: none), or a role
  // that implies it (status, alert, log). A region in a closed dialog is not rendered.
  const region = (node) => {
    for (let n = node.nodeType === 1 ? node : node.parentElement; n; n = n.parentElement) {
      const live = n.getAttribute('aria-live');
      if (live === 'off') return null;
      if (live || ['status', 'alert', 'log'].includes(n.getAttribute('role'))) {
        return n.closest('dialog:not([open])') ? null : n;
      }
    }
    return null;
  };
  new MutationObserver((records) => {
    const changed = new Set();
    for (const record of records) {
      const target = record.target.nodeType === 1 ? record.target : record.target.parentElement;
      if (target?.closest('.msg[aria-busy] .msg-body')) window.__frames++;
      const live = region(record.target);
      if (live) changed.add(live);
    }
    for (const live of changed) {
      const text = live.textContent.replace(/\\s+/g, ' ').trim();
      if (text) window.__said.push({ region: live.id, text });
    }
  }).observe(document.body, { childList: true, subtree: true, characterData: true });
}"""


@dataclass
class Said:
    region: str
    text: str


class Listener:
    """What the live regions say from now on (each change of a region's text, once per batch
    of DOM changes, as Chromium raises one live-region event for it), and how many times an
    answer being written was redrawn meanwhile."""

    def __init__(self, page: Page) -> None:
        self.page = page
        page.evaluate(LISTEN)

    def restart(self) -> None:
        self.page.evaluate(LISTEN)

    def said(self) -> list[Said]:
        return [Said(**s) for s in self.page.evaluate("() => window.__said")]

    def texts(self, region: str | None = None) -> list[str]:
        return [s.text for s in self.said() if region is None or s.region == region]

    def wait_for(self, region: str, count: int = 1, text: str | None = None) -> None:
        """Until `region` has said `count` things (or `text`): an announcer speaks a moment
        after the change it tells."""
        self.page.wait_for_function(
            """([region, count, text]) => window.__said.filter(
              (s) => s.region === region && (text === null || s.text === text)).length >= count""",
            arg=[region, count, text],
        )

    def frames(self) -> int:
        frames: int = self.page.evaluate("() => window.__frames")
        return frames


def live_regions(page: Page) -> dict[str, str]:
    """The live regions in Chromium's accessibility tree (its own computation from roles and
    aria-live): element id -> politeness."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("Accessibility.enable")
        cdp.send("DOM.enable")
        regions: dict[str, str] = {}
        for node in cdp.send("Accessibility.getFullAXTree")["nodes"]:
            props = {p["name"]: p["value"].get("value") for p in node.get("properties", [])}
            if props.get("live") not in ("polite", "assertive") or "backendDOMNodeId" not in node:
                continue
            described = cdp.send("DOM.describeNode", {"backendNodeId": node["backendDOMNodeId"]})
            attributes = described["node"].get("attributes", [])
            named = dict(zip(attributes[::2], attributes[1::2], strict=True))
            regions[named.get("id", described["node"]["nodeName"])] = str(props["live"])
        return regions
    finally:
        cdp.detach()


def outside_live_regions(page: Page, selector: str) -> None:
    """`selector`'s element is in none of the live regions Chromium sees: its changes are not
    announced."""
    regions = live_regions(page)
    inside = page.evaluate(
        """([ids, selector]) => {
          const node = document.querySelector(selector);
          return ids.filter((id) => document.getElementById(id)?.contains(node));
        }""",
        [list(regions), selector],
    )
    assert not inside, f"{selector} is inside live regions {inside} (all: {regions})"


# ---------- the fair queue, filled by real requests ----------


@dataclass
class Line:
    """Long counting completions to smollm2 on the real server, each holding a slot or
    waiting in line until let go (the client leaves: its slot or place frees up). `headers`:
    whose they are, with accounts on (an API key's Authorization). Raw completions are never
    paused by preemption."""

    server: RealServer
    headers: dict[str, str] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    holders: list[Future[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def hold(self) -> Future[None]:
        async def follow() -> None:
            body = long_completion(stream=True)
            async with (
                httpx.AsyncClient(
                    base_url=self.server.v1, headers=self.headers, timeout=300
                ) as client,
                client.stream("POST", "/completions", json=body) as response,
            ):
                async for _ in response.aiter_raw():
                    pass

        holder = asyncio.run_coroutine_threadsafe(follow(), self.loop)
        self.holders.append(holder)
        return holder

    def wait_until(self, running: int, queued: int) -> None:
        def there() -> bool:
            model = self.server.model(SMOL) or {}
            return (model.get("running"), model.get("queued")) == (running, queued)

        self.server.wait_for(there, 60, f"{running} running and {queued} waiting")

    def close(self) -> None:
        """Every holder let go, its connection closed."""

        async def let_go() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(let_go(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
