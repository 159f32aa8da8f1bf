"""Which models get their chat template's built-in system prompt, and reading its text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from iaforall.models.packaged import PACKAGED, PackagedModel
from iaforall.models.system_prompt import UNMEASURED, builtin_prompt, uses_builtin_prompt
from iaforall.settings import EngineSettings


def _model(name: str, sha256: str, *, builtin: bool) -> PackagedModel:
    return PackagedModel(name, name, (), 1, sha256, "", builtin_system_prompt=builtin)


REGISTRY = {
    "with:1b": _model("with:1b", "a" * 64, builtin=True),
    "without:1b": _model("without:1b", "b" * 64, builtin=False),
}


def test_auto_follows_what_was_measured_for_that_very_file() -> None:
    assert uses_builtin_prompt("auto", "a" * 64, REGISTRY) is True
    assert uses_builtin_prompt("auto", "b" * 64, REGISTRY) is False
    # A file no one measured (pulled from the Hub): what its template's authors wrote.
    assert uses_builtin_prompt("auto", "c" * 64, REGISTRY) is UNMEASURED


@pytest.mark.parametrize("sha256", ["a" * 64, "b" * 64, "c" * 64])
def test_the_operators_on_or_off_overrides_every_model(sha256: str) -> None:
    assert uses_builtin_prompt("on", sha256, REGISTRY) is True
    assert uses_builtin_prompt("off", sha256, REGISTRY) is False


def test_every_packaged_chat_model_has_a_measured_default() -> None:
    """The choices recorded from bench/quality.py (see the README's table)."""
    chosen = {name: uses_builtin_prompt("auto", m.sha256) for name, m in PACKAGED.items()}
    assert chosen == {name: m.builtin_system_prompt for name, m in PACKAGED.items()}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("auto", "auto"), ("on", "on"), ("off", "off"), ("true", "on"), ("false", "off"),
     ("1", "on"), ("0", "off"), (True, "on"), (False, "off")],
)  # fmt: skip
def test_the_setting_keeps_its_old_yes_no_values(value: Any, expected: str) -> None:
    assert EngineSettings(template_default_system=value).template_default_system == expected


def test_the_setting_defaults_to_auto_and_refuses_other_words() -> None:
    assert EngineSettings().template_default_system == "auto"
    with pytest.raises(ValueError, match="template_default_system"):
        EngineSettings(template_default_system="sometimes")


def _chatml(default: str | None) -> Any:
    """A ChatML template (Qwen's, SmolLM2's): `default` when no system message is given."""

    async def render(messages: Sequence[dict[str, Any]]) -> str:
        messages = list(messages)
        if messages[0]["role"] != "system" and default is not None:
            messages.insert(0, {"role": "system", "content": default})
        turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return turns + "<|im_start|>assistant\n"

    return render


async def test_the_builtin_prompt_is_read_from_the_template_itself() -> None:
    qwen = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    assert await builtin_prompt(_chatml(qwen)) == qwen
    assert await builtin_prompt(_chatml(None)) is None


async def test_a_template_that_ignores_system_messages_has_no_builtin_prompt() -> None:
    async def render(messages: Sequence[dict[str, Any]]) -> str:
        return "".join(f"[{m['role']}] {m['content']}\n" for m in messages if m["role"] != "system")

    assert await builtin_prompt(render) is None


async def test_a_template_whose_system_block_differs_without_a_system_message() -> None:
    """Markup around the probe that the default does not share: no text is made up."""

    async def render(messages: Sequence[dict[str, Any]]) -> str:
        if messages[0]["role"] == "system":
            return f"<<SYS>>{messages[0]['content']}<</SYS>> {messages[1]['content']}"
        return f"{messages[0]['content']}"

    assert await builtin_prompt(render) is None
