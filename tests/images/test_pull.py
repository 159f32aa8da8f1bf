"""`iaforall pull FOLDER`: an image model into the store (the files it draws with, each with its
sha256 in a manifest of kind image); `iaforall list` shows its kind; the server makes it a
runtime of kind image."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from iaforall.cli.models import list_models, remove_models
from iaforall.cli.pull import pull
from iaforall.engines.installed import installed_runtimes
from iaforall.models.runtime_store import RuntimeStore
from iaforall.settings import ServerSettings, Settings, StoreSettings
from tests.images.tiny import make_tiny_pipeline


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        store=StoreSettings(home=tmp_path / "home", install_missing=False),
        server=ServerSettings(model="tiny:latest"),
    )


def test_pull_a_folder_then_list_it_as_an_image_model(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_tiny_pipeline(tmp_path / "My-Tiny-ONNX")
    assert pull(settings, [str(source)]) == 0
    out = capsys.readouterr().out
    assert "my-tiny:latest is ready" in out and "an image model" in out

    stored = RuntimeStore(settings.store.home).get("my-tiny:latest")
    assert stored is not None and stored.manifest.kind == "image"
    names = {f.name for f in stored.manifest.files}
    assert "unet/model.onnx" in names and "tokenizer/merges.txt" in names
    assert not any(n.startswith("vae_encoder/") for n in names)  # not needed to draw
    for file in stored.manifest.files:
        data = (stored.path / file.name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (file.size, file.sha256)
    manifest = json.loads((stored.path / "manifest.json").read_text())
    assert manifest["source"] == f"folder:{source}"

    assert list_models(settings) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("my-tiny:latest"))
    assert line.split()[1] == "image"

    specs = {s.model: s for s in installed_runtimes(settings)}
    assert specs["my-tiny:latest"].kind == "image"  # type: ignore[index]
    assert specs["my-tiny:latest"].aliases == ("my-tiny",)  # type: ignore[index]

    assert remove_models(settings, ["my-tiny"]) == 0
    assert "deleted my-tiny:latest" in capsys.readouterr().out
    assert RuntimeStore(settings.store.home).list() == []


def test_a_folder_that_is_not_an_image_model_is_refused_and_nothing_is_left(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_tiny_pipeline(tmp_path / "broken")
    (source / "tokenizer" / "merges.txt").unlink()
    assert pull(settings, [str(source)], name="broken") == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "lacks tokenizer/vocab.json and tokenizer/merges.txt" in err
    assert "optimum-cli export onnx" in err
    assert RuntimeStore(settings.store.home).list() == []
