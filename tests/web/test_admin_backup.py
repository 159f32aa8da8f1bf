"""The admin page's backups in real Chromium: says none was made, downloads one from the live
server (a real archive), then says when it was made; accessible in light and dark, in French."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.real_server import RealServer
from tests.web.conftest import js_errors, watched
from tests.web.test_accounts import assert_accessible, new_context


def test_an_admin_downloads_a_backup_and_sees_when(
    browser: Browser, server: RealServer, tmp_path: Path
) -> None:
    ctx = new_context(browser)
    ctx.set_default_timeout(30_000)
    page = watched(ctx.new_page())
    page.goto(f"{server.url}/admin#backup")
    page.wait_for_selector("body[data-ready]")
    expect(page.get_by_role("heading", level=1)).to_have_text("Backups")
    expect(page.locator("#nav-backup")).to_have_attribute("aria-current", "page")
    last = page.locator("#backup-last")
    expect(last).to_have_text("No backup has been made on this server yet.")
    expect(page.locator("#backup-cron")).to_contain_text("iaforall backup")
    assert_accessible(page, "admin-backup-light")

    with page.expect_download() as download:
        page.locator("#backup-download").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith("iaforall-backup-") and saved.suffix == ".tar"
    with tarfile.open(saved) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert "database/iaforall.db" in names and not any(n.startswith("models/") for n in names)
    assert {m["name"] for m in manifest["models"]} >= {"smollm2:135m"}
    expect(last).to_contain_text("Last backup:")
    expect(last).to_contain_text("downloaded from this page")

    page.locator("#language-select").select_option("fr")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sauvegardes")
    expect(last).to_contain_text("téléchargée depuis cette page")
    assert not js_errors(page)
    ctx.close()

    dark = new_context(browser, "dark")
    page = watched(dark.new_page())
    page.goto(f"{server.url}/admin#backup")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#backup-last")).to_contain_text("Last backup:")
    assert_accessible(page, "admin-backup-dark")
    dark.close()
