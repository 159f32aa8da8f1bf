"""`serve`'s flags are made from the settings: every IAFORALL_ field has one, named, typed and
described by it, a new field gets its own with nothing else written, and the flags people
already use keep working."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from iaforall.cli.main import _parser, apply_flags, main
from iaforall.cli.settings_flags import add_settings_flags, apply_settings_flags, settings_groups
from iaforall.settings import Settings

OLD_FLAGS = [
    "--host", "127.0.0.2", "--port", "8181", "--model", "smollm2:135m", "--parallel", "3",
    "--threads", "1", "--context-length", "1024", "--keep-alive", "-1", "--no-preload",
    "--auth", "--cluster", "ray://10.0.0.2:10001",
]  # fmt: skip


def serve(*flags: str) -> Settings:
    return apply_flags(Settings(), _parser().parse_args(["serve", *flags]))


def shown(parser: argparse.ArgumentParser) -> str:
    """The parser's help, on one line."""
    return " ".join(parser.format_help().split())


def test_the_flags_people_already_use_keep_working() -> None:
    settings = serve(*OLD_FLAGS)
    assert (settings.server.host, settings.server.port) == ("127.0.0.2", 8181)
    assert (settings.server.model, settings.server.preload) == ("smollm2:135m", False)
    assert (settings.engine.parallel, settings.engine.threads) == (3, 1)
    assert (settings.engine.context_length, settings.engine.keep_alive) == (1024, -1.0)
    assert settings.people.auth is True
    assert settings.cluster.cluster == "ray://10.0.0.2:10001"


def test_every_setting_of_ours_has_a_flag_but_secrets() -> None:
    parser = argparse.ArgumentParser()
    add_settings_flags(parser)
    options = set(re.findall(r"--[a-z0-9-]+", shown(parser)))
    secrets = {"api_key", "metrics_token", "database_url"}
    for group in settings_groups(Settings).values():
        for name in group.model_fields:
            flag = "--" + name.replace("_", "-")
            assert (flag in options) is (name not in secrets), flag
    assert "--hf-endpoint" not in options  # other programs' variables are not ours to flag
    assert (
        "--context-length INT Context window per slot, in tokens (capped at the model's "
        "trained length) (IAFORALL_CONTEXT_LENGTH; default 4096)."
    ) in shown(parser)


def test_flags_are_typed_by_their_fields(tmp_path: Path) -> None:
    settings = serve(
        "--espeak", "system", "--rules-file", str(tmp_path / "rules.toml"),
        "--cluster-autoscaling", '{"m:1b": [1, 3]}', "--retrieval-vector-weight", "0.5",
        "--template-default-system", "off", "--home", str(tmp_path),
    )  # fmt: skip
    assert settings.voice.espeak == "system"
    assert settings.policy.rules_file == tmp_path / "rules.toml"
    assert settings.cluster.bounds("m:1b") == (1, 3)
    assert settings.knowledge.retrieval_vector_weight == 0.5
    assert settings.engine.template_default_system == "off"
    assert settings.store.home == tmp_path


def test_a_flag_left_out_keeps_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IAFORALL_PARALLEL", "5")
    monkeypatch.setenv("IAFORALL_MAX_QUEUE", "7")
    settings = serve("--parallel", "4")
    assert (settings.engine.parallel, settings.scheduling.max_queue) == (4, 7)
    assert serve() == Settings()


def test_a_new_setting_gets_its_flag_for_free() -> None:
    class GardenSettings(BaseSettings):
        """A group nobody wrote a flag for."""

        model_config = SettingsConfigDict(env_prefix="IAFORALL_", extra="ignore")

        tomato_plants: int = Field(3, ge=0, description="Tomato plants in the garden.")
        watering: bool = Field(True, description="Water them.")

    class MoreSettings(Settings):
        garden: GardenSettings = Field(default_factory=GardenSettings)

    parser = argparse.ArgumentParser()
    add_settings_flags(parser, MoreSettings)
    args = parser.parse_args(["--tomato-plants", "12", "--no-watering"])
    settings = apply_settings_flags(MoreSettings(), args)
    assert isinstance(settings, MoreSettings)
    assert (settings.garden.tomato_plants, settings.garden.watering) == (12, False)
    assert "Tomato plants in the garden (IAFORALL_TOMATO_PLANTS; default 3)." in shown(parser)


def test_a_value_that_does_not_fit_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--parallel", "0"])
    assert exited.value.code == 2
    assert "--parallel: Input should be greater than or equal to 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--espeak", "loud"])
    assert "invalid choice" in capsys.readouterr().err
