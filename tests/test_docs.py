"""The README documents every setting, and the set-up commands."""

from __future__ import annotations

from pathlib import Path

from iaforall.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    for field in Settings.model_fields.values():
        part = field.annotation
        assert isinstance(part, type)
        for name in part.model_fields:
            assert f"`IAFORALL_{name.upper()}`" in README, name


def test_the_two_setup_commands_are_given() -> None:
    assert "make run" in README and "make test" in README
