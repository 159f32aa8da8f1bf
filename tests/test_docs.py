"""The README documents every setting, and the set-up commands."""

from __future__ import annotations

from pathlib import Path

from iaforall.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    settings = Settings()
    for part in (settings.store, settings.server, settings.engine, settings.scheduling):
        for name in type(part).model_fields:
            assert f"`IAFORALL_{name.upper()}`" in README, name


def test_the_two_setup_commands_are_given() -> None:
    assert "make run" in README and "make test" in README
