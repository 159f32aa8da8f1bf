"""`iaforall pull hf.co/owner/repo` of a repository that holds an ONNX text-to-image export,
from a loopback stand-in for the Hub: every file checked against the Hub's size and sha256, an
interrupted transfer resumed, and a repository that lacks a part refused before any download.
(A file the Hub never gives whole is not tried here: huggingface_hub's own retries wait ~20 s.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from iaforall.app import create_app
from iaforall.cli.pull import pull
from iaforall.engines.images.folder import files_of
from iaforall.models.runtime_store import RuntimeStore
from iaforall.settings import ServerSettings, Settings, StoreSettings
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.images.tiny import make_tiny_pipeline
from tests.pull.servers import Served, serve

REPO = "someone/tiny-draw-onnx"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    folder = make_tiny_pipeline(tmp_path / "export")
    served = Served(repos={REPO: {name: (folder / name).read_bytes() for name in files_of(folder)}})
    with serve(served) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield served


def settings(tmp_path: Path) -> Settings:
    return Settings(
        store=StoreSettings(home=tmp_path / "home", install_missing=False),
        server=ServerSettings(model="tiny:latest"),
    )


def test_an_image_model_from_the_hub_is_checked_file_by_file(
    hub: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.drop_once.add(f"{REPO}/unet/model.onnx")  # cut once mid-file: resumed
    assert pull(settings(tmp_path), [f"hf.co/{REPO}"]) == 0, capsys.readouterr().err
    assert "tiny-draw:latest is ready" in capsys.readouterr().out
    stored = RuntimeStore(tmp_path / "home").get("tiny-draw:latest")
    assert stored is not None and stored.manifest.kind == "image"
    assert stored.manifest.source == f"hf:{REPO}"
    for file in stored.manifest.files:
        assert (stored.path / file.name).read_bytes() == hub.repos[REPO][file.name]
    assert not any(f.name.startswith("vae_encoder/") for f in stored.manifest.files)
    fetched = [path for method, path, _ in hub.requests if method == "GET"]
    assert not any("vae_encoder" in path for path in fetched)  # not downloaded either


def test_a_repository_that_lacks_a_part_is_refused_before_any_download(
    hub: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    del hub.repos[REPO]["tokenizer/vocab.json"]
    assert pull(settings(tmp_path), [f"hf.co/{REPO}"], name="broken") == 1
    assert "tokenizer/vocab.json" in " ".join(capsys.readouterr().err.split())
    assert not any(path.startswith(f"/{REPO}/resolve") for _, path, _ in hub.requests)
    assert RuntimeStore(tmp_path / "home").list() == []


async def test_a_running_server_pulls_an_image_model_and_draws_with_it_at_once(
    hub: Served, tmp_path: Path
) -> None:
    stock_store(tmp_path)
    app = create_app(
        fake_settings(tmp_path, max_queue=2, queue_timeout=10),
        factory=FakeWorld(client=httpx.AsyncClient()).factory,
    )
    ask = {"model": "tiny-draw", "prompt": "a kite", "size": "256x256"}
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        assert (await client.post("/v1/images/generations", json=ask)).status_code == 404
        pulled = await client.post("/api/pull", json={"model": f"hf.co/{REPO}", "stream": False})
        assert pulled.status_code == 200, pulled.text
        drawn = await client.post("/v1/images/generations", json=ask)  # no restart
        assert drawn.status_code == 200, drawn.text
        deleted = await client.request("DELETE", "/api/delete", json={"model": "tiny-draw"})
        assert deleted.status_code == 200, deleted.text
        assert (await client.post("/v1/images/generations", json=ask)).status_code == 404
        assert RuntimeStore(tmp_path).list() == []
