"""The README documents every setting, and the set-up commands."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings

from iaforall.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    """Ours as `IAFORALL_NAME`; other programs' variables that we honour by their own names."""
    for field in Settings.model_fields.values():
        part = field.annotation
        assert isinstance(part, type) and issubclass(part, BaseSettings)
        prefix = part.model_config.get("env_prefix", "")
        for name in part.model_fields:
            variable = f"{prefix}{name.upper()}"
            assert (f"`{variable}`" if prefix else variable) in README, name


def test_the_two_setup_commands_are_given() -> None:
    assert "make run" in README and "make test" in README
