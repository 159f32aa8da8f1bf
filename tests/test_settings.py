"""Settings: the only module that reads the process environment, and how it reads the variables
of other programs that IAForAll honours."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import iaforall
from iaforall.settings import OtherPrograms, Settings

PACKAGE = Path(iaforall.__file__).parent


def _environment_uses(path: Path) -> list[str]:
    """Where a module touches the environment: os.environ, os.getenv, os.putenv, os.unsetenv."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        name = node.attr if isinstance(node, ast.Attribute) else None
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            name = next((a.name for a in node.names if "env" in a.name), None)
        if name in ("environ", "environb", "getenv", "putenv", "unsetenv"):
            found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def test_only_settings_touches_the_environment() -> None:
    uses = [
        use
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "settings.py" or path.parent != PACKAGE
        for use in _environment_uses(path)
    ]
    assert uses == []
    assert _environment_uses(PACKAGE / "settings.py")  # the scan sees what it looks for


@pytest.mark.parametrize(
    ("value", "offline"),
    [
        ("1", True),
        ("true", True),
        ("ON", True),
        ("yes", True),
        ("", False),
        ("0", False),
        ("no", False),
        ("maybe", False),
    ],
)
def test_the_hub_offline_flag_reads_as_huggingface_hub_does(
    value: str, offline: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert Settings().other_programs.hub_offline is offline  # never an error at start


def test_other_programs_variables_keep_their_own_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example")
    monkeypatch.setenv("XDG_DATA_HOME", "/data")
    monkeypatch.setenv("IAFORALL_HF_ENDPOINT", "https://not-this.example")
    monkeypatch.delenv("IAFORALL_HOME", raising=False)
    assert OtherPrograms().hub_endpoint == "https://mirror.example"
    assert Settings().store.home == Path("/data/iaforall")
    monkeypatch.setenv("HF_ENDPOINT", "")
    assert OtherPrograms().hub_endpoint is None
