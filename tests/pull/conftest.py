from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from iaforall.models.store import ModelStore
from tests.models.gguf_files import write_gguf
from tests.pull.servers import Served, serve


@pytest.fixture(scope="session")
def gguf_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf").read_bytes()


@pytest.fixture(scope="session")
def projector_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("gguf") / "mmproj.gguf"
    return write_gguf(path, arch="clip", name="Projector").read_bytes()


@pytest.fixture
def served() -> Served:
    return Served()


@pytest.fixture
def base_url(served: Served, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with serve(served) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield url


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "home", install_missing=False)
