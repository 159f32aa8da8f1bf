"""The settings show the model's built-in system prompt, to replace or remove it (real
Chromium, the real server and SmolLM2's real chat template)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from iaforall.models.packaged import PACKAGED
from tests.real_server import SMOL, RealServer
from tests.web.conftest import create_conversation, get_conversation, js_errors, open_app
from tests.web.test_accessibility import assert_accessible

SMOLLM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def test_the_builtin_prompt_is_shown_removed_and_replaced(page: Page, server: RealServer) -> None:
    used = PACKAGED[SMOL].builtin_system_prompt  # this server leaves the choice to the model
    conversation = create_conversation(server)
    open_app(page, server, conversation["id"])
    page.fill("#composer-input", "Hi")
    page.click("#settings-button")
    section = page.locator("#builtin-prompt")
    expect(section.locator("legend")).to_have_text("This model's built-in prompt")
    expect(page.locator("#builtin-prompt-text")).to_have_text(SMOLLM_PROMPT)
    status = page.locator("#builtin-prompt-status")
    expect(status).to_contain_text("sees this before" if used else "Not sent")
    assert_accessible(page, "axe-builtin-prompt")

    page.click("#prompt-button")
    expect(page.locator("#prompt-output")).to_be_visible()
    assert (SMOLLM_PROMPT in page.locator("#prompt-output").inner_text()) is used

    # Remove: an empty system message, stored with the conversation.
    page.check("#remove-builtin-prompt")
    expect(status).to_contain_text("Removed")
    page.click("#prompt-button")
    expect(page.locator("#prompt-output")).not_to_contain_text(SMOLLM_PROMPT)
    assert get_conversation(server, conversation["id"]).json()["remove_builtin_prompt"] is True

    # Replace: a copy to edit becomes the conversation's own system prompt.
    page.click("#replace-builtin-prompt")
    expect(page.locator("#system-prompt")).to_have_value(SMOLLM_PROMPT)
    expect(page.locator("#system-prompt")).to_be_focused()
    expect(status).to_contain_text("Replaced by your system prompt")
    page.fill("#system-prompt", "You are SmolLM. Answer in French.")
    page.click("#prompt-button")
    expect(page.locator("#prompt-output")).to_contain_text("You are SmolLM. Answer in French.")
    expect(page.locator("#prompt-output")).not_to_contain_text(SMOLLM_PROMPT)
    stored = get_conversation(server, conversation["id"]).json()
    assert stored["system_prompt"] == "You are SmolLM. Answer in French."

    page.keyboard.press("Escape")
    page.select_option("#language-select", "fr")
    page.click("#settings-button")
    expect(section.locator("legend")).to_have_text("La consigne intégrée de ce modèle")
    expect(status).to_contain_text("Remplacée par votre consigne système")
    expect(page.locator("#replace-builtin-prompt")).to_have_text(
        "La remplacer : modifier une copie comme ma consigne système"
    )
    assert_accessible(page, "axe-builtin-prompt-fr")
    assert not js_errors(page)
