"""The web app in every state, each reached for real: the real server and smollm2, the fair
queue filled by real requests, Chromium's fake microphone playing speech our own server spoke.
Each state is axe-clean under the WCAG 2.2 A/AA tags and best practices in four looks (light and
dark, English and French, 375 px and 200 % zoom: see tests/web/states.py), photographed, and
walked with the keyboard; and what screen readers are told is read from the live regions."""

from __future__ import annotations

import io
import os
import re
import signal
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.real_server import SMOL, RealServer, long_completion
from tests.web.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SAMPLE,
    create_conversation,
    import_conversation,
    js_errors,
    open_app,
    wait_for_answer,
    watched,
)
from tests.web.states import (
    LOOKS,
    Line,
    Listener,
    check_state,
    live_regions,
    new_context,
    outside_live_regions,
    set_language,
)
from tests.web.test_knowledge import NOTES, ready_base
from tests.web.test_voice import launch, spoken

BUSY_ANSWER = ".msg-assistant[aria-busy]"
VOICE_PHASES = ("Listening", "Transcribing", "Answering", "Reading the answer aloud")
WRITING = "() => document.querySelector('.msg-assistant[aria-busy] .msg-body')?.textContent.trim()"


@pytest.fixture(scope="module")
def request_wav(server: RealServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A request for a long answer, spoken by our server after 7 s of silence (the conversation
    mode listens meanwhile), then silence that ends the recording."""
    out = tmp_path_factory.mktemp("speech") / "story.wav"
    spoken(server, "Tell me a long story about a lighthouse keeper.", "alloy", out)
    with wave.open(str(out)) as source:
        params, frames = source.getparams(), source.readframes(source.getnframes())
    silence = b"\x00" * (params.sampwidth * params.framerate * 7)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as target:
        target.setparams(params)
        target.writeframes(silence + frames)
    out.write_bytes(buffer.getvalue())
    return out


@pytest.fixture(scope="module")
def browser(request_wav: Path) -> Iterator[Browser]:  # this module's own: a microphone that talks
    yield from launch(request_wav)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = new_context(browser)
    page = watched(context.new_page())
    # Which sounds play (observed, not changed): read aloud is an Audio outside the document.
    page.add_init_script(
        """(() => {
          const play = HTMLMediaElement.prototype.play;
          window.__players = [];
          HTMLMediaElement.prototype.play = function () {
            window.__players.push(this);
            return play.call(this);
          };
        })()"""
    )
    yield page
    assert not js_errors(page)
    context.close()


@pytest.fixture
def line(server: RealServer) -> Iterator[Line]:
    held = Line(server)
    yield held
    held.close()


def playing(page: Page) -> bool:
    return bool(page.evaluate("() => window.__players.some((a) => !a.paused && !a.ended)"))


def moving(page: Page) -> dict[str, object]:
    """The animations running now, and the elements (or their ::before/::after) whose style
    animates or transitions."""
    result: dict[str, object] = page.evaluate(
        """() => {
          const moving = [];
          for (const el of document.querySelectorAll('*')) {
            for (const pseudo of [null, '::before', '::after']) {
              const style = getComputedStyle(el, pseudo);
              const durations = style.transitionDuration.split(',').map(parseFloat);
              if (style.animationName !== 'none' || durations.some((d) => d > 0)) {
                moving.push(el.tagName + '.' + el.className + (pseudo || ''));
              }
            }
          }
          return { running: document.getAnimations().length, moving };
        }"""
    )
    return result


def test_chat_states_and_what_screen_readers_hear(
    page: Page, server: RealServer, line: Line
) -> None:
    open_app(page, server)
    check_state(page, "empty")

    # A whole answer: told once, when it ends; the tokens as they come are not.
    conversation = create_conversation(server, title="States")
    open_app(page, server, conversation["id"])
    set_language(page, "en")
    regions = live_regions(page)
    assert regions == {"error-region": "assertive", "announcer": "polite", "voice-status": "polite"}
    heard = Listener(page)
    page.fill("#composer-input", "Hello! Who are you?")
    page.press("#composer-input", "Enter")
    page.wait_for_function(WRITING)
    outside_live_regions(page, f"{BUSY_ANSWER} .msg-body")
    answer = wait_for_answer(page)
    heard.wait_for("announcer")
    assert heard.frames() >= 3, "the answer was drawn as it came"
    said = heard.said()
    assert len(said) == 1 and said[0].region == "announcer", said
    assert said[0].text.split()[:3] == answer.split()[:3], (said, answer)

    imported = import_conversation(server, SAMPLE)  # Markdown, a stopped and a failed answer
    open_app(page, server, imported["id"])
    check_state(page, "answers")

    # Waiting in line: both of smollm2's slots taken, one request waiting ahead.
    counting = create_conversation(
        server, title="Counting", settings={"max_tokens": 600, "temperature": 0, "seed": 1}
    )
    open_app(page, server, counting["id"])
    set_language(page, "en")
    first, second = line.hold(), line.hold()
    line.wait_until(2, 0)
    third = line.hold()
    line.wait_until(2, 1)
    heard = Listener(page)
    page.fill("#composer-input", "Count from 1 to 500, one number per line.")
    page.press("#composer-input", "Enter")
    status = page.locator(".msg-assistant .msg-waiting")
    expect(status).to_have_text(re.compile(r"^You are 2nd in line \(about \d+ (s|min)\)$"))
    line.wait_until(2, 2)
    heard.wait_for("announcer")

    # prefers-reduced-motion: the waiting dot pulses, unless motion is reduced.
    page.emulate_media(reduced_motion="no-preference")
    free = moving(page)
    assert free["running"] and free["moving"], free
    page.emulate_media(reduced_motion="reduce")
    assert moving(page) == {"running": 0, "moving": []}

    check_state(page, "waiting", still=lambda: line.wait_until(2, 2))
    set_language(page, "en")
    line_said = [t for t in heard.texts("announcer") if "in line" in t]
    assert len(line_said) == 1 and line_said[0].startswith("You are 2nd in line"), heard.said()
    third.cancel()  # the one ahead leaves: the browser is next
    expect(status).to_have_text(re.compile(r"^You are next in line"))
    heard.wait_for("announcer", 2)
    first.cancel()  # a slot frees up: the browser's answer is written
    page.wait_for_function(WRITING)
    expect(status).to_be_hidden()
    in_line = [t for t in heard.texts("announcer") if "in line" in t]
    assert len(in_line) == 2 and in_line[1].startswith("You are next in line"), heard.said()

    # Mid-stream: no announcement per token (nor for anything else).
    heard.restart()
    outside_live_regions(page, f"{BUSY_ANSWER} .msg-body")
    check_state(page, "streaming", still=lambda: expect(page.locator(BUSY_ANSWER)).to_have_count(1))
    set_language(page, "en")
    page.keyboard.press("Escape")  # stop
    stopped = page.locator(".msg-assistant").last
    expect(stopped).to_have_attribute("data-status", "stopped")
    heard.wait_for("announcer")
    assert heard.frames() >= 3
    assert heard.said() and [s.text for s in heard.said()] == ["Stopped"], heard.said()
    check_state(page, "stopped")

    # Failed: the model's worker dies while it writes (the server restarts it).
    second.cancel()
    line.wait_until(0, 0)
    set_language(page, "en")
    heard.restart()
    page.get_by_role("button", name="Regenerate").click()
    page.wait_for_function(WRITING)
    os.kill(server.worker_pid(SMOL), signal.SIGKILL)
    expect(page.locator(".msg-assistant").last).to_have_attribute("data-status", "error")
    alert = page.get_by_role("alert")
    expect(alert).not_to_be_empty()
    heard.wait_for("announcer")
    assert [s.region for s in heard.said()] == ["error-region", "announcer"], heard.said()
    assert heard.texts("announcer") == ["The answer was interrupted."]
    check_state(page, "failed")
    restarted = httpx.post(
        f"{server.v1}/completions", json=long_completion(max_tokens=2), timeout=60
    )
    assert restarted.status_code == 200  # the next request restarts the worker


def test_conversation_mode_and_read_aloud_states(page: Page, server: RealServer) -> None:
    conversation = create_conversation(
        server, title="Voice", settings={"max_tokens": 300, "temperature": 0, "seed": 1}
    )
    open_app(page, server, conversation["id"])
    set_language(page, "en")
    heard = Listener(page)
    mode, status = page.locator("#handsfree-button"), page.locator("#voice-status")
    mode.focus()
    page.keyboard.press("Enter")
    expect(mode).to_have_attribute("aria-pressed", "true")
    expect(status).to_contain_text("Listening")
    check_state(
        page,
        "listening",
        still=lambda: expect(status).to_have_text(re.compile("^(Listening|À l.écoute)")),
    )
    set_language(page, "en")

    expect(status).to_have_text("Answering…", timeout=60_000)
    page.wait_for_function(WRITING)
    outside_live_regions(page, f"{BUSY_ANSWER} .msg-body")
    check_state(page, "thinking", still=lambda: expect(page.locator(BUSY_ANSWER)).to_have_count(1))
    set_language(page, "en")

    expect(status).to_contain_text("Reading the answer aloud", timeout=180_000)
    page.wait_for_function("() => window.__players.some((a) => !a.paused && !a.ended)")
    check_state(page, "speaking", still=lambda: assert_playing(page))
    set_language(page, "en")
    page.keyboard.press("Escape")
    expect(mode).to_have_attribute("aria-pressed", "false")
    assert not playing(page)
    heard.wait_for("announcer", 2)

    # Told: the mode on, each of its phases (in the language of the moment), the mode off; the
    # answer itself is read aloud, so screen readers are not also told it.
    phases: list[str] = []
    for text in heard.texts("voice-status"):  # the English ones (the looks switch to French)
        phase = next((p for p in VOICE_PHASES if text.startswith(p)), None)
        if phase and phases[-1:] != [phase]:
            phases.append(phase)
    assert phases == list(VOICE_PHASES), heard.said()
    announcer = heard.texts("announcer")
    assert announcer[0].startswith("Conversation mode on") and announcer[-1] == (
        "Conversation mode off."
    ), announcer
    answer = page.locator(".msg-assistant .msg-body").last.inner_text()
    assert len(answer) > 40 and not any(answer[:30] in s.text for s in heard.said())

    # Read aloud, playing.
    read = page.locator(".msg-assistant .msg-read").last
    read.focus()
    page.keyboard.press("Enter")
    expect(read).to_have_text("Stop reading", timeout=30_000)
    page.wait_for_function("() => window.__players.some((a) => !a.paused && !a.ended)")
    check_state(page, "read-aloud", still=lambda: assert_playing(page))
    set_language(page, "en")
    read = page.locator(".msg-assistant .msg-read").last
    expect(read).to_have_text("Stop reading")  # the button drawn again still says so
    read.click()
    expect(read).to_have_text("Read aloud")
    assert not playing(page)


def test_an_error_in_the_conversation_mode_is_told_at_once(
    browser: Browser, server: RealServer
) -> None:
    """The microphone refused, as a person refuses it (Chromium's permission prompt answers no):
    the alert says why at once, and the mode says it has ended."""
    # Another Chromium from the same Playwright, whose permission prompt refuses the microphone.
    denying = browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-device-for-media-stream",  # a microphone, refused
            "--use-fake-ui-for-media-stream=deny",
        ],
    )
    try:
        page = watched(new_context(denying).new_page())
        open_app(page, server)
        set_language(page, "en")
        heard = Listener(page)
        mode = page.locator("#handsfree-button")
        mode.focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("alert")).to_contain_text("Microphone access was refused")
        expect(mode).to_have_attribute("aria-pressed", "false")
        heard.wait_for("announcer", 2)
        alerted = heard.texts("error-region")
        assert len(alerted) == 1 and "Microphone access was refused" in alerted[0]
        told = heard.texts("announcer")
        assert told[0].startswith("Conversation mode on"), told
        assert told[-1] == "Conversation mode off.", told
        assert not js_errors(page)
    finally:
        denying.close()


def assert_playing(page: Page) -> None:
    assert playing(page), "the answer is no longer being read aloud"


def test_dialogs_and_menus(page: Page, server: RealServer) -> None:
    conversation = import_conversation(server, SAMPLE)
    open_app(page, server, conversation["id"])

    def opened_by_keyboard(opener: str, target: str) -> None:
        page.locator(opener).focus()
        page.keyboard.press("Enter")
        expect(page.locator(target)).to_be_visible()

    def closed_by_escape(target: str, back_to: str) -> None:
        page.keyboard.press("Escape")
        expect(page.locator(target)).to_be_hidden()
        expect(page.locator(back_to)).to_be_focused()

    for menu, button in (
        ("#conversation-menu", "#conversation-menu-button"),
        ("#user-menu", "#user-menu-button"),
    ):
        opened_by_keyboard(button, menu)
        check_state(page, menu[1:], keyboard=False)
        page.locator(button).focus()
        page.keyboard.press("Tab")  # into the menu, ringed
        expect(page.locator(f"{menu} :is(a, button):visible").first).to_be_focused()
        closed_by_escape(menu, button)

    opened_by_keyboard("#settings-button", "#settings-dialog")
    page.locator("#prompt-button").click()
    expect(page.locator("#prompt-output")).to_be_visible()
    check_state(page, "settings")
    closed_by_escape("#settings-dialog", "#settings-button")

    page.locator("#composer-input").focus()
    page.keyboard.press("Control+/")
    check_state(page, "help")
    closed_by_escape("#help-dialog", "#composer-input")

    page.locator("#composer-input").focus()
    page.keyboard.press("Control+Shift+S")  # the conversations, over the chat on narrow screens
    expect(page.locator("#sidebar")).to_be_visible()
    expect(page.locator("#search")).to_be_focused()
    check_state(page, "sidebar", keyboard=False)
    opened_by_keyboard("#about-button", "#about-dialog")
    check_state(page, "about")
    closed_by_escape("#about-dialog", "#about-button")
    page.keyboard.press("Escape")  # the sidebar closes, focus back on its toggle
    expect(page.locator("#sidebar")).to_be_hidden()
    expect(page.locator("#sidebar-toggle")).to_be_focused()
    # Tab out of the sidebar over the chat: it closes, so focus never goes under it.
    page.keyboard.press("Enter")
    expect(page.locator("#new-chat")).to_be_focused()
    page.locator("#about-button").focus()  # its last control
    page.keyboard.press("Tab")
    expect(page.locator("#sidebar")).to_be_hidden()
    expect(page.locator("#conversation-menu-button")).to_be_focused()

    for item, dialog, name in (
        ("#rename-button", "#rename-dialog", "rename"),
        ("#delete-button", "#confirm-dialog", "confirm-delete"),
    ):
        opened_by_keyboard("#conversation-menu-button", "#conversation-menu")
        page.locator(item).focus()
        page.keyboard.press("Enter")
        expect(page.locator(dialog)).to_be_visible()
        check_state(page, name)
        closed_by_escape(dialog, "#conversation-menu-button")
    expect(page.locator("#conversation-title")).to_have_text(SAMPLE["title"])


def test_a_knowledge_file_being_read(
    page: Page, server: RealServer, line: Line, tmp_path: Path
) -> None:
    open_app(page, server)
    set_language(page, "en")
    line.hold()  # smollm2 holds the cores: the file waits for them to be read
    line.wait_until(1, 0)
    page.locator("#knowledge-button").focus()
    page.keyboard.press("Enter")
    page.get_by_label("Name of a new knowledge base").fill("Harbour notes")
    page.keyboard.press("Enter")
    base = page.locator(".kb", has=page.get_by_role("heading", name="Harbour notes"))
    notes = tmp_path / "harbour.md"
    notes.write_text(
        "\n\n".join(f"## Ship {n}\n\nThe ship {n} passed at dawn." for n in range(200))
    )
    heard = Listener(page)
    base.locator("input[type=file]").set_input_files(str(notes))
    row = base.locator(".kb-file", has_text="harbour.md")
    expect(row.locator("progress")).to_be_visible()
    check_state(
        page, "knowledge-reading", still=lambda: expect(row.locator("progress")).to_be_visible()
    )
    set_language(page, "en")
    line.holders[0].cancel()
    expect(row.locator(".kb-file-status")).to_have_text(re.compile(r"^Ready"), timeout=120_000)
    heard.wait_for("knowledge-status", text="harbour.md is ready.")


def test_an_answer_with_sources_and_a_citation_opened(
    page: Page, server: RealServer, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES)
    base = ready_base(server, "Lighthouse club", notes)
    conversation = create_conversation(server, title="Sources", knowledge=[base["id"]])
    open_app(page, server, conversation["id"])
    set_language(page, "en")
    page.fill("#composer-input", "Who logs the ships?")
    page.press("#composer-input", "Enter")
    wait_for_answer(page, timeout=120_000)
    source = page.locator(".msg-assistant .msg-source").first
    expect(source).to_have_text(re.compile(r"^\[1\] notes\.md"))
    check_state(page, "sources")

    set_language(page, "en")
    source.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=re.compile(r"^Source \[1\]: notes\.md"))
    expect(dialog).to_be_visible()
    expect(dialog.locator("#citation-text")).to_contain_text("Marguerite Quillivic")
    check_state(page, "citation", still=lambda: expect(dialog).to_be_visible())
    page.keyboard.press("Escape")  # (focus goes back: tests/web/test_knowledge.py)
    expect(dialog).to_be_hidden()


ADMIN_VIEWS = ("users", "usage", "queue", "audit", "models", "backup")


def test_admin_pages_with_data(page: Page, server: RealServer, line: Line) -> None:
    line.hold()
    line.hold()
    line.hold()
    line.wait_until(2, 1)  # the live queue has something to show
    page.goto(f"{server.url}/admin#users")
    page.wait_for_selector("body[data-ready]")
    for view in ADMIN_VIEWS:
        page.locator(f"#nav-{view}").focus()
        page.keyboard.press("Enter")
        expect(page.locator(f"#view-{view}")).to_be_visible()
        check_state(page, f"admin-{view}", looks=LOOKS)
