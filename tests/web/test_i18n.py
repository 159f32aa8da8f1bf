"""Languages: every key exists in every catalogue; French works and is remembered."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.real_server import RealServer
from tests.web.conftest import SAMPLE, import_conversation, js_errors, open_app, shot

STATIC = Path(__file__).resolve().parents[2] / "src" / "iaforall" / "web" / "static"

# How the JS names catalogue keys: t("k"), tCount("k") (k_one / k_other), actionButton("k"),
# `key` / `i18nKey` fields and variables, and the action (shortcut_*) / keys of the table.
JS_KEY_PATTERNS = [
    r"""\bt\(\s*"([a-z0-9_]+)"\s*[,)]""",
    r"""\bt\(\s*ok \? "([a-z0-9_]+)" : "([a-z0-9_]+)"\s*\)""",
    r"""\bactionButton\(\s*"([a-z0-9_]+)\"""",
    r"""\b(?:key|i18nKey)\s*[:=]\s*"([a-z0-9_]+)\"""",
    r"""\baction:\s*"(shortcut_[a-z0-9_]+)\"""",
    r"""\bkeys:\s*\[([^\]]*)\]""",
]


def _no_repeats(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    assert not repeated, f"keys given twice (the last silently wins): {repeated}"
    return dict(pairs)


def catalogues() -> dict[str, dict[str, str]]:
    return {
        p.stem: json.loads(p.read_text(), object_pairs_hook=_no_repeats)
        for p in sorted((STATIC / "i18n").glob("*.json"))
    }


def keys_in_html() -> set[str]:
    html = (STATIC / "index.html").read_text()
    keys = set(re.findall(r'data-i18n="([^"]+)"', html))
    for attrs in re.findall(r'data-i18n-attr="([^"]+)"', html):
        keys |= {pair.split(":")[1].strip() for pair in attrs.split(",")}
    return keys


def keys_in_js() -> set[str]:
    keys: set[str] = set()
    for path in (STATIC / "js").glob("*.js"):
        source = path.read_text()
        for pattern in JS_KEY_PATTERNS:
            for match in re.findall(pattern, source):
                for group in match if isinstance(match, tuple) else (match,):
                    keys |= set(re.findall(r"[a-z][a-z0-9_]*", group))
        for counted in re.findall(r"""\btCount\(\s*"([a-z0-9_]+)\"""", source):
            keys |= {f"{counted}_one", f"{counted}_other"}
    return keys


def test_every_key_used_exists_in_every_catalogue() -> None:
    found = catalogues()
    assert {"en", "fr"} <= set(found)
    used = keys_in_html() | keys_in_js()
    assert len(used) > 80  # the scan sees the app's strings, not nothing
    reference = set(found["en"])
    for code, catalogue in found.items():
        assert set(catalogue) == reference, f"{code}: {set(catalogue) ^ reference}"
        assert isinstance(catalogue["_meta"]["name"], str) and catalogue["_meta"]["name"]
        assert not used - set(catalogue), f"{code} lacks {sorted(used - set(catalogue))}"
        for key, text in catalogue.items():
            if not key.startswith("_"):  # same placeholders in every language
                assert set(re.findall(r"\{\w+\}", text)) == set(
                    re.findall(r"\{\w+\}", found["en"][key])
                ), (code, key)
    # `_meta` describes the catalogue; `_server` holds the server's own strings (exports); the
    # sentences for the server's error codes are named from the code (test_error_codes.py).
    said_from_codes = {k for k in reference if k.startswith(("error_code_", "error_quota_"))}
    unused = reference - used - {"_meta", "_server"} - said_from_codes
    assert not unused, f"keys no code uses: {sorted(unused)}"


def test_no_text_in_the_page_itself() -> None:
    """index.html holds keys, never words: every element's text comes from a catalogue."""
    html = (STATIC / "index.html").read_text()
    body = re.sub(r"<(svg|script|style)\b.*?</\1>", "", html.split("<body>")[1], flags=re.S)
    text = re.sub(r"<[^>]+>", " ", body)
    assert not re.findall(r"[A-Za-zÀ-ÿ]{2,}", text)
    assert not re.search(r'\s(aria-label|title|placeholder|alt)="', body)


def test_french_interface_is_remembered(page: Page, server: RealServer) -> None:
    conversation = import_conversation(server, SAMPLE)
    open_app(page, server, conversation["id"])
    expect(page.locator("html")).to_have_attribute("lang", "en")
    options = page.locator("#language-select option")
    expect(options).to_have_text(["English", "Français"])
    page.select_option("#language-select", "fr")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#new-chat")).to_have_text("Nouvelle conversation")
    expect(page.locator("#composer-input")).to_have_attribute(
        "placeholder", "Écrivez votre message…"
    )
    expect(page.locator("#help-button")).to_have_attribute("aria-label", "Raccourcis clavier")
    expect(page.locator(".msg-assistant .msg-stopped")).to_have_text("Arrêté")
    expect(page.get_by_role("button", name="Copier le code")).to_have_text("Copier")
    assert page.title() == "Sample with Markdown \N{EN DASH} IAForAll"
    shot(page, "french")

    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#settings-button")).to_have_text("Réglages et transparence")
    expect(page.locator("#language-select")).to_have_value("fr")
    # Dates in French too.
    expect(page.locator(".conversation-date").first).to_have_text(
        re.compile(r"maintenant|seconde|minute|heure")
    )
    page.keyboard.press("Control+/")
    expect(page.locator("#help-dialog kbd").first).to_have_text("Entrée")
    assert not js_errors(page)


def test_browser_language_is_followed(browser: Browser, server: RealServer) -> None:
    context = browser.new_context(locale="fr-CA")
    try:
        page = open_app(context.new_page(), server)
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        expect(page.locator(".empty-title")).to_have_text("Comment puis-je vous aider ?")
    finally:
        context.close()
