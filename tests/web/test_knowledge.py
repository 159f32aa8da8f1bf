"""Knowledge bases in the web app: created in their dialog, files uploaded and followed until
read, chosen for a conversation, and the answer's sources listed under it, each opening the
cited passage and the original file at its page. Real Chromium, server, parsers, encoder and
smollm2 (too small to answer well: the citations are what is checked, not its wording)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader, PdfWriter

from tests.knowledge.documents import text_pdf
from tests.real_server import RealServer
from tests.vision.images import text_png
from tests.web import test_accounts
from tests.web.conftest import (
    create_conversation,
    js_errors,
    open_app,
    shot,
    wait_for_answer,
    watched,
)
from tests.web.test_accessibility import assert_accessible
from tests.web.test_accounts import ADMIN, ADMIN_PASSWORD, ensure_admin, new_context, sign_in

auth_server = test_accounts.auth_server  # the same fixture: this module's own server

NOTES = """# Lighthouse club

## Harbour register

The keeper Marguerite Quillivic logs every passing ship in the blue harbour register.

## Meetings

The club meets on the second Thursday of each month in the boathouse.
"""
STATUTES = [
    ["Statuts de l'association Les Jardins du Port.", "Article 1 : l'association a pour but",
     "d'entretenir les jardins partagés du quartier."],
    ["Article 7 : les cotisations annuelles sont de 15 euros.",
     "Elles sont réglées avant le 31 décembre, auprès de la trésorière."],
]  # fmt: skip
API = "/v1/knowledge_bases"


def documents(folder: Path) -> tuple[Path, Path]:
    notes = folder / "notes.md"
    notes.write_text(NOTES)
    return notes, text_pdf(folder / "statuts.pdf", STATUTES)


def new_base(server: RealServer, name: str) -> dict[str, Any]:
    response = httpx.post(f"{server.url}{API}", json={"name": name}, timeout=10)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def ready_base(server: RealServer, name: str, *files: Path) -> dict[str, Any]:
    """A base whose files are read, made through the API."""
    base = new_base(server, name)
    sent = httpx.post(
        f"{server.url}{API}/{base['id']}/files",
        files=[("file", (f.name, f.read_bytes())) for f in files],
        timeout=30,
    )
    assert sent.status_code == 202, sent.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        listed = httpx.get(f"{server.url}{API}/{base['id']}/files", timeout=10).json()["data"]
        if all(f["status"] == "ready" for f in listed):
            return base
        assert not any(f["status"] == "failed" for f in listed), listed
        time.sleep(0.2)
    raise AssertionError("the files were not read in time")


def test_a_base_is_made_filled_used_and_its_citations_opened(
    page: Page, server: RealServer, tmp_path: Path
) -> None:
    notes, statutes = documents(tmp_path)
    conversation = create_conversation(server, title="Association questions")
    open_app(page, server, conversation["id"])
    expect(page.locator("#knowledge-line-text")).not_to_contain_text("Jardins du Port")

    page.get_by_role("button", name="Knowledge bases").click()
    dialog = page.get_by_role("dialog", name="Knowledge bases")
    expect(dialog).to_be_visible()
    # Focus starts in the dialog: on the first base's choice, or (no base yet) on the name of
    # a new one. Other tests' bases may be on this shared server.
    assert page.evaluate("document.activeElement.closest('dialog')?.id") == "knowledge-dialog"
    dialog.get_by_label("Name of a new knowledge base").focus()
    page.keyboard.type("Jardins du Port")
    page.keyboard.press("Enter")
    status = page.locator("#knowledge-status")
    expect(status).to_have_text("Knowledge base “Jardins du Port” created.")
    base = dialog.locator(".kb", has=page.get_by_role("heading", name="Jardins du Port"))
    expect(base.get_by_role("button", name="Add files… to Jardins du Port")).to_be_focused()
    expect(base.locator(".kb-meta")).to_have_text("0 files")

    file_input = base.locator("input[type=file]")
    accepted = ".pdf,.docx,.pptx,.xlsx,.html,.htm,.md,.txt,.csv"
    expect(file_input).to_have_attribute("accept", accepted)
    file_input.set_input_files([str(notes), str(statutes)])
    expect(status).to_contain_text("Added, now being read: notes.md and statuts.pdf.")
    rows = base.locator(".kb-file")
    expect(rows).to_have_count(2)
    expect(base.locator(".kb-meta")).to_have_text("2 files")
    for name in ("notes.md", "statuts.pdf"):
        row = rows.filter(has_text=name)
        expect(row.locator(".kb-file-status")).to_have_text(
            re.compile(r"^Ready \(\d+ passages?\)$"), timeout=120_000
        )
        expect(row.locator("progress")).to_be_hidden()
    expect(status).to_have_text(re.compile(r"is ready\.$"))
    assert_accessible(page, "knowledge-dialog")

    use = base.get_by_role("checkbox", name="Use in this conversation")
    use.check()
    expect(status).to_have_text("“Jardins du Port” is now used in this conversation.")
    kb_id = base.get_attribute("data-id")
    stored = httpx.get(f"{server.url}/web/api/conversations/{conversation['id']}").json()
    assert stored["knowledge"] == [kb_id]
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator("#knowledge-line-text")).to_have_text(
        "Answers use your documents: Jardins du Port."
    )

    page.fill("#composer-input", "Avant quelle date faut-il régler les cotisations ?")
    page.press("#composer-input", "Enter")
    wait_for_answer(page, timeout=120_000)
    sources = page.locator(".msg-assistant").last.locator(".msg-sources")
    expect(sources.locator(".msg-sources-title")).to_have_text("Sources")
    first = sources.get_by_role("button").first
    expect(first).to_have_text("[1] statuts.pdf, page 2")
    assert_accessible(page, "knowledge-citations")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page, "knowledge-citations-dark")
    page.emulate_media(color_scheme="light")

    first.click()
    passage = page.get_by_role("dialog", name="Source [1]: statuts.pdf")
    expect(passage).to_be_visible()
    expect(passage.locator("#citation-where")).to_have_text("page 2")
    expect(passage.locator("#citation-text")).to_contain_text("31 décembre")
    expect(passage.locator("#citation-ocr")).to_be_hidden()  # a text layer, not a scan
    link = passage.get_by_role("link", name="Open the file (opens in a new tab)")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener")
    href = link.get_attribute("href") or ""
    assert re.fullmatch(rf"{API}/{kb_id}/files/[^/]+/content#page=2", href), href
    served = page.request.get(f"{server.url}{href.split('#')[0]}")
    assert served.status == 200 and served.headers["content-type"] == "application/pdf"
    assert served.body() == statutes.read_bytes()
    assert_accessible(page, "knowledge-passage")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page, "knowledge-passage-dark")
    page.emulate_media(color_scheme="light")
    page.keyboard.press("Escape")
    expect(first).to_be_focused()  # back where the user was

    # The sources are stored with the answer: still there after a reload.
    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator(".msg-assistant .msg-source").first).to_have_text("[1] statuts.pdf, page 2")
    expect(page.locator("#knowledge-line-text")).to_have_text(
        "Answers use your documents: Jardins du Port."
    )
    shot(page, "knowledge-answer")
    assert not js_errors(page)


def test_refusals_are_explained_and_files_and_bases_deleted(
    page: Page, server: RealServer, tmp_path: Path
) -> None:
    picture = tmp_path / "report.pdf"
    picture.write_bytes(text_png("not a document"))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    notes = tmp_path / "minutes.md"
    notes.write_text("# Minutes\n\nThe treasurer reads the accounts aloud in June.\n")
    base = new_base(server, "Refusals")
    open_app(page, server)
    page.click("#knowledge-button")
    item = page.locator(f'.kb[data-id="{base["id"]}"]')
    # A file dropped on the base goes to it, like one chosen with the button.
    item.evaluate(
        """(item, text) => {
          const files = new DataTransfer();
          files.items.add(new File([text], "minutes.md", { type: "text/markdown" }));
          item.dispatchEvent(new DragEvent("drop", {
            dataTransfer: files, bubbles: true, cancelable: true,
          }));
        }""",
        notes.read_text(),
    )
    item.locator("input[type=file]").set_input_files([str(picture), str(empty)])

    alert = page.locator("#knowledge-error")
    expect(alert).to_contain_text(re.compile(r"report\.pdf was not added: .*PNG image"))
    expect(alert).to_contain_text("empty.txt was not added: 'empty.txt' is empty.")
    rows = item.locator(".kb-file")
    expect(rows).to_have_count(1)  # only the good one: the refused ones are not listed
    expect(rows.first).to_contain_text("minutes.md")
    expect(rows.first.locator(".kb-file-status")).to_have_text(
        re.compile("^Ready"), timeout=120_000
    )

    # Accepted, then refused when read: a password-protected PDF says why, in its row.
    writer = PdfWriter(clone_from=PdfReader(text_pdf(tmp_path / "plain.pdf", [["Secret"]])))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    locked = tmp_path / "locked.pdf"
    writer.write(locked)
    item.locator("input[type=file]").set_input_files(str(locked))
    failed = rows.filter(has_text="locked.pdf").locator(".kb-file-status")
    expect(failed).to_have_text(re.compile(r"^Could not be read: .*password"), timeout=60_000)
    expect(page.locator("#knowledge-status")).to_contain_text("locked.pdf could not be read:")
    assert_accessible(page, "knowledge-refused")
    # Every file settled: the dialog no longer asks for their progress.
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/files") else None)
    page.wait_for_timeout(2500)
    assert asked == []

    # Deleting a file, then the base, each after a confirmation.
    item.get_by_role("button", name="Delete minutes.md").click()
    confirm = page.get_by_role("dialog", name="Delete this file?")
    expect(confirm).to_contain_text("“minutes.md” will be removed from “Refusals”")
    confirm.get_by_role("button", name="Delete").click()
    expect(rows).to_have_count(1)
    expect(page.locator("#knowledge-status")).to_have_text("minutes.md deleted.")
    expect(item.get_by_role("button", name="Delete locked.pdf")).to_be_focused()  # the next one
    item.get_by_role("button", name="Delete the base Refusals").click()
    page.get_by_role("dialog", name="Delete this knowledge base?").get_by_role(
        "button", name="Delete"
    ).click()
    expect(item).to_have_count(0)
    expect(page.locator("#knowledge-status")).to_have_text("Knowledge base “Refusals” deleted.")
    assert httpx.get(f"{server.url}{API}/{base['id']}").status_code == 404
    assert not js_errors(page)


def test_a_new_chat_sends_its_bases_when_it_is_created(
    page: Page, server: RealServer, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES)
    base = ready_base(server, "Lighthouse", notes)
    open_app(page, server)
    expect(page.locator("#knowledge-line-text")).to_have_text(
        "No knowledge base in use: answers come from the model alone."
    )
    page.get_by_role("button", name="Choose…").click()
    item = page.locator(f'.kb[data-id="{base["id"]}"]')
    expect(item.locator(".kb-meta")).to_have_text("1 file")
    expect(item.locator(".kb-file-status")).to_have_text(re.compile(r"^Ready"))
    item.get_by_role("checkbox", name="Use in this conversation").check()
    page.get_by_role("button", name="Close").click()
    expect(page.locator("#knowledge-line-text")).to_contain_text("Lighthouse")

    # "What the model sees" shows the passages the chosen base gives to the unsent question.
    page.fill("#composer-input", "Who logs the ships?")
    page.click("#settings-button")
    page.click("#prompt-button")
    expect(page.locator("#prompt-output")).to_contain_text("[1] notes.md, Lighthouse club >")
    page.keyboard.press("Escape")

    # The chat is created by its first message, with the base; a busy server then undoes it.
    page.route("**/reply", lambda route: route.fulfill(status=429, headers={"Retry-After": "3"}))
    with page.expect_request(
        lambda r: r.method == "POST" and r.url.endswith("/web/api/conversations")
    ) as created:
        page.press("#composer-input", "Enter")
    assert created.value.post_data_json["knowledge"] == [base["id"]]
    expect(page.get_by_role("alert")).to_contain_text("busy")
    expect(page.locator("#knowledge-line-text")).to_contain_text("Lighthouse")  # still chosen
    assert not js_errors(page)


def test_the_dialog_in_french(browser: Browser, server: RealServer, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES)
    base = ready_base(server, "Phare", notes)
    context = browser.new_context(locale="fr-FR", viewport={"width": 1400, "height": 800})
    try:
        page = open_app(watched(context.new_page()), server)
        button = page.get_by_role("button", name="Bases de connaissances")
        expect(button).to_have_text("Bases de connaissances")  # wide enough for its words
        button.click()
        dialog = page.get_by_role("dialog", name="Bases de connaissances")
        item = dialog.locator(f'.kb[data-id="{base["id"]}"]')
        expect(item.locator(".kb-meta")).to_have_text("1 fichier")
        expect(item.locator(".kb-file-status")).to_have_text(re.compile(r"^Prêt \(\d+ passages?\)"))
        item.get_by_role("checkbox", name="Utiliser dans cette conversation").check()
        expect(page.locator("#knowledge-status")).to_have_text(
            "« Phare » est maintenant utilisée dans cette conversation."
        )
        assert_accessible(page, "knowledge-dialog-fr")
        page.keyboard.press("Escape")
        expect(page.locator("#knowledge-line-text")).to_have_text(
            "Les réponses s\N{RIGHT SINGLE QUOTATION MARK}appuient sur vos documents : Phare."
        )
        assert not js_errors(page)
    finally:
        context.close()


def signed_in(server: RealServer, name: str, password: str) -> httpx.Client:
    """An API client with a session, as the browser has it (cookie and CSRF token)."""
    client = httpx.Client(base_url=server.url, timeout=30)
    login = client.post("/web/api/session", json={"name": name, "password": password})
    assert login.status_code == 200, login.text
    client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    return client


def test_with_accounts_uploads_work_and_a_shared_base_is_read_only(
    browser: Browser, auth_server: RealServer, tmp_path: Path
) -> None:
    ensure_admin(auth_server)
    reader, reader_password = "kim", "kim's long password"
    admin = signed_in(auth_server, ADMIN, ADMIN_PASSWORD)
    made = admin.post(
        "/admin/api/users", json={"name": reader, "password": reader_password, "role": "member"}
    )
    assert made.status_code == 201, made.text
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES)

    owner_context, reader_context = new_context(browser), new_context(browser)
    try:
        page = sign_in(watched(owner_context.new_page()), auth_server, ADMIN, ADMIN_PASSWORD)
        page.click("#knowledge-button")
        page.fill("#knowledge-name", "Club notes")
        page.press("#knowledge-name", "Enter")
        item = page.locator(".kb", has=page.get_by_role("heading", name="Club notes"))
        # The upload is a multipart form: it carries the session's CSRF token like the rest.
        item.locator("input[type=file]").set_input_files(str(notes))
        expect(item.locator(".kb-file-status")).to_have_text(re.compile("^Ready"), timeout=120_000)
        kb_id = item.get_attribute("data-id")
        assert admin.put(f"{API}/{kb_id}/shares/{reader}").status_code == 200

        shared = sign_in(watched(reader_context.new_page()), auth_server, reader, reader_password)
        shared.get_by_role("button", name="Knowledge bases").click()
        item = shared.locator(f'.kb[data-id="{kb_id}"]')
        expect(item.locator(".kb-meta")).to_have_text("1 file · shared with you, read only")
        expect(item.locator(".kb-file-status")).to_have_text(re.compile("^Ready"))
        expect(item.get_by_role("checkbox", name="Use in this conversation")).to_be_enabled()
        expect(item.get_by_role("button")).to_have_count(0)  # nothing to add or delete there
        expect(item.locator("input[type=file]")).to_have_count(0)
        assert_accessible(shared, "knowledge-shared-read-only")
        assert not js_errors(page) and not js_errors(shared)
    finally:
        owner_context.close()
        reader_context.close()
        admin.close()
