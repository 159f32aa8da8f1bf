"""Installable in real Chromium: the manifest and our icons, Chromium's own installability check,
the service worker keeping the app shell (never an answer), and the app opening without the
server in the page's language, saying it cannot reach it. Nothing comes from the internet."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, expect, sync_playwright

from tests.real_server import RealServer
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, js_errors, open_app, shot, watched

KEPT = """async () => {
  const kept = [];
  for (const name of await caches.keys()) {
    for (const request of await (await caches.open(name)).keys()) {
      kept.push([name, new URL(request.url).pathname]);
    }
  }
  return kept;
}"""

# `ready` resolves once a worker is active, which may still be "activating": wait for the end.
ACTIVATED = """async () => {
  const worker = (await navigator.serviceWorker.ready).active;
  if (worker.state !== "activated") {
    await new Promise((done) => worker.addEventListener("statechange", () => {
      if (worker.state === "activated") done();
    }));
  }
  return worker.state;
}"""


@pytest.fixture
def installing(tmp_path: Path) -> Iterator[BrowserContext]:
    """A phone-sized French profile that lets the app's service worker run: a real profile on
    disk, as an installed app has (Chromium does not install from a private window)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `scripts/install-system-deps.sh` as root.")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            locale="fr-FR",
            viewport={"width": 390, "height": 800},
            service_workers="allow",
        )
        context.set_default_timeout(15_000)
        yield context
        context.close()


def test_the_app_installs_and_opens_without_the_server(
    installing: BrowserContext, server: RealServer
) -> None:
    asked: list[str] = []
    installing.on("request", lambda request: asked.append(request.url))
    page = open_app(watched(installing.new_page()), server)

    # The manifest, as served and as Chromium read it.
    served = page.request.get(f"{server.url}/static/manifest.webmanifest")
    assert served.ok and served.headers["content-type"].startswith("application/manifest+json")
    manifest = served.json()
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == manifest["scope"] == "/"
    assert manifest["name"] and manifest["short_name"]
    assert manifest["theme_color"] and manifest["background_color"]
    sizes = set()
    for icon in manifest["icons"]:
        assert icon["src"].startswith("/static/icons/"), icon  # ours, from this server
        got = page.request.get(server.url + icon["src"])
        assert got.ok and got.headers["content-type"] == icon["type"], icon
        if icon["type"] == "image/png":
            width, height = Image.open(io.BytesIO(got.body())).size
            assert icon["sizes"] == f"{width}x{height}", icon
            sizes.add(width)
    assert {192, 512} <= sizes
    colours = page.locator('meta[name="theme-color"]')
    expect(colours).to_have_count(2)
    assert {colours.nth(i).get_attribute("media") for i in range(2)} == {
        "(prefers-color-scheme: light)",
        "(prefers-color-scheme: dark)",
    }

    # The service worker: registered from the root, active, served as a script.
    state = page.evaluate(ACTIVATED)
    assert state == "activated"
    worker = page.request.get(f"{server.url}/sw.js")
    assert worker.ok and worker.headers["content-type"].startswith("text/javascript")
    assert "__VERSION__" not in worker.text() and "__SHELL__" not in worker.text()

    cdp = installing.new_cdp_session(page)
    read = cdp.send("Page.getAppManifest")
    assert read["url"].endswith("/static/manifest.webmanifest") and not read["errors"], read
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []

    # Kept: the shell, in one cache named by its version; never an answer.
    kept = page.evaluate(KEPT)
    assert len({name for name, _ in kept}) == 1
    paths = {path for _, path in kept}
    assert {"/", "/admin", "/rules", "/static/js/main.js", "/static/i18n/fr.json"} <= paths
    assert not [
        p for p in paths if not (p in {"/", "/admin", "/rules"} or p.startswith("/static/"))
    ]

    # Without the server: the kept shell opens, in French, and says the server cannot be reached.
    whence: dict[str, str] = {}  # each response's source, as Chromium tells it
    cdp.on(
        "Network.responseReceived",
        lambda event: whence.setdefault(
            event["response"]["url"], event["response"].get("serviceWorkerResponseSource", "")
        ),
    )
    cdp.send("Network.enable")
    installing.set_offline(True)
    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("body")).to_have_attribute("data-offline", "true")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    alert = page.locator("#error-region")
    expect(alert).to_contain_text("Le serveur est injoignable")
    expect(page.locator("#composer-input")).to_be_visible()
    assert whence[f"{server.url}/"] == "cache-storage", whence  # the kept page, not the server's
    assert whence[f"{server.url}/static/i18n/fr.json"] == "cache-storage", whence
    shot(page, "offline-fr")
    # Back online, Retry opens the app itself.
    installing.set_offline(False)
    alert.get_by_role("button", name="Réessayer").click()
    page.wait_for_selector("body[data-ready]:not([data-offline])")
    expect(alert).to_be_empty()
    assert not js_errors(page)
    assert [url for url in asked if not url.startswith(server.url)] == []
