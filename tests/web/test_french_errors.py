"""A French page says the server's errors in French, never in the server's English.

Real errors from a real server (its own, with no model loaded: every error here comes before a
model would answer, and a context quota no reply fits in): a quota, an over-long message, an
unknown model, knowledge files refused at upload and when read, a model the admin page cannot
pull. The rules page's failure is crafted (the server has no way to fail it on demand). Each
time the English sentence the server sent is looked for on the page, and must not be there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from pypdf import PdfReader, PdfWriter

from tests.knowledge.documents import text_pdf
from tests.real_server import SMOL, RealServer, launch_server, stop_server
from tests.vision.images import text_png
from tests.web.conftest import js_errors, open_app, shot, watched

STATIC = Path(__file__).resolve().parents[2] / "src" / "iaforall" / "web" / "static"
FRENCH = json.loads((STATIC / "i18n" / "fr.json").read_text())
# Words of the server's English sentences that no French sentence of the app has.
ENGLISH = re.compile(
    r"\b(the|is|are|was|not|your|this|could|does|has|have|with|model|file|server)\b"
)


@pytest.fixture(scope="module")
def strict_server(
    model_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealServer]:
    """No model loaded, its own database, and an administrator's (the local user's) context
    quota of 16 tokens: any reply is refused before a model would load."""
    logs = tmp_path_factory.mktemp("french-errors")
    real = launch_server(
        model_home,
        logs / "server.log",
        IAFORALL_PRELOAD="false",
        IAFORALL_DATABASE_URL=f"sqlite:///{logs / 'french.db'}",
        IAFORALL_ADMIN_MAX_CONTEXT="16",
    )
    yield real
    stop_server(real)


@pytest.fixture
def french(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="fr-FR", viewport={"width": 1200, "height": 800})
    context.set_default_timeout(15_000)
    yield watched(context.new_page())
    context.close()


def said(key: str, **values: str) -> str:
    """The French catalogue's sentence `key`, filled as the app fills it."""
    return str(FRENCH[key]).format(**values)


def said_in_french(region: Locator, expected: str, english: str) -> None:
    """`region` says `expected` (the catalogue's French), not the server's `english` sentence."""
    expect(region).to_contain_text(expected)
    text = region.inner_text()
    assert english not in text, text
    assert not ENGLISH.search(text), text


def english_error(response: httpx.Response) -> tuple[str, str]:
    """The server's (code, English message) of an error answer."""
    error = response.json()["error"]
    return (error["code"], error["message"]) if isinstance(error, dict) else ("", error)


def test_chat_errors_are_said_in_french(french: Page, strict_server: RealServer) -> None:
    page, url = french, strict_server.url
    settings = {"max_tokens": 24, "temperature": 0}
    made = httpx.post(f"{url}/web/api/conversations", json={"model": SMOL, "settings": settings})
    conversation = made.json()
    reply = f"{url}/web/api/conversations/{conversation['id']}/reply"
    open_app(page, strict_server, conversation["id"])
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    alert = page.locator("#error-region")

    # A quota: the local user is an administrator, whose context quota no reply fits in.
    quota = httpx.post(reply, json={"content": "Bonjour"}, timeout=30)
    assert quota.status_code == 429 and english_error(quota)[0] == "quota_exceeded"
    page.fill("#composer-input", "Bonjour")
    page.press("#composer-input", "Enter")
    said_in_french(alert, FRENCH["error_quota_max_context"], english_error(quota)[1])
    expect(alert).to_contain_text(FRENCH["error_quota"].split("{")[0])
    shot(page, "error-quota-fr")

    # A message longer than the server accepts.
    long = "a" * 200_001
    refused = httpx.post(reply, json={"content": long}, timeout=30)
    assert refused.status_code == 400 and english_error(refused)[0] == "text_too_long"
    page.fill("#composer-input", long)
    page.press("#composer-input", "Enter")
    said_in_french(
        alert,
        "Un texte est plus long que ce que le serveur accepte (content)",
        english_error(refused)[1],
    )

    # A model that is not on this server (chosen in another window, then removed, say).
    gone = httpx.post(reply, json={"content": "Bonjour", "model": "gone:1b"}, timeout=30)
    assert gone.status_code == 404 and english_error(gone)[0] == "model_not_found"
    page.locator("#model-select").evaluate(
        "s => { s.add(new Option('gone:1b', 'gone:1b')); s.value = 'gone:1b'; }"
    )
    page.fill("#composer-input", "Bonjour")
    page.press("#composer-input", "Enter")
    said_in_french(alert, FRENCH["error_model_not_found"], english_error(gone)[1])
    assert not js_errors(page)


def test_knowledge_refusals_are_said_in_french(
    french: Page, strict_server: RealServer, tmp_path: Path
) -> None:
    page, url = french, strict_server.url
    base = httpx.post(f"{url}/v1/knowledge_bases", json={"name": "Refus"}, timeout=10).json()
    picture = tmp_path / "rapport.pdf"
    picture.write_bytes(text_png("pas un document"))
    upload = f"{url}/v1/knowledge_bases/{base['id']}/files"
    with picture.open("rb") as sent:
        refused = httpx.post(upload, files={"file": ("rapport.pdf", sent)}, timeout=30)
    code, english = english_error(refused)
    assert refused.status_code in (400, 415), refused.text
    writer = PdfWriter(clone_from=PdfReader(text_pdf(tmp_path / "clair.pdf", [["Secret"]])))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    locked = tmp_path / "verrou.pdf"
    writer.write(locked)

    open_app(page, strict_server)
    page.click("#knowledge-button")
    item = page.locator(f'.kb[data-id="{base["id"]}"]')
    item.locator("input[type=file]").set_input_files([str(picture), str(locked)])
    said_in_french(
        page.locator("#knowledge-error"),
        said("knowledge_upload_refused", name="rapport.pdf", detail=FRENCH[f"error_code_{code}"]),
        english,
    )
    # Accepted, then refused when read: the reason stored with its code, said in French.
    status = item.locator(".kb-file", has_text="verrou.pdf").locator(".kb-file-status")
    expected = FRENCH["error_code_encrypted_document"]
    expect(status).to_have_text(said("knowledge_status_failed", detail=expected), timeout=60_000)
    said_in_french(
        page.locator("#knowledge-status"),
        said("knowledge_announce_failed", name="verrou.pdf", detail=expected),
        "password",
    )
    assert not js_errors(page)


def test_admin_and_rules_pages_say_errors_in_french(
    french: Page, strict_server: RealServer
) -> None:
    page, url = french, strict_server.url
    pull = httpx.post(f"{url}/api/pull", json={"model": "whisper:large"}, timeout=30)
    lines = [json.loads(line) for line in pull.text.splitlines() if line.strip()]
    failed = pull.json() if pull.status_code != 200 else lines[-1]
    assert "error" in failed and failed["code"], failed
    page.goto(f"{url}/admin#models")
    page.wait_for_selector("body[data-ready]")
    expect(page.get_by_role("heading", level=1)).to_have_text("Modèles")
    page.fill("#pull-name", "whisper:large")
    page.click("#pull-button")
    said_in_french(
        page.locator("#pull-status"),
        said(
            "admin_models_failed",
            name="whisper:large",
            detail=FRENCH[f"error_code_{failed['code']}"],
        ),
        failed["error"],
    )

    # The rules page, when the server fails to give its rules (crafted: an English answer).
    internal = "The server hit an unexpected error; it has been logged."
    body = {"error": {"message": internal, "type": "server_error", "code": "internal_error"}}
    page.route("**/v1/policy*", lambda route: route.fulfill(status=500, json=body))
    page.goto(f"{url}/rules")
    said_in_french(
        page.locator("#rules-status"), FRENCH["rules_error"].split("{")[0].strip(), internal
    )
    expect(page.locator("#rules-status")).to_contain_text(FRENCH["error_code_internal_error"])
    assert not js_errors(page)
