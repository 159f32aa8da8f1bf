"""`iaforall pull` with its progress bar, and `/api/pull` through the official `ollama` client."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import ollama
from iaforall.app import create_app
from iaforall.cli.main import main
from iaforall.settings import StoreSettings
from tests.conftest import fake_settings, stock_store
from tests.conftest import served as served_app
from tests.pull.servers import Served

REPO = "someone/Tiny-Model-GGUF"


def test_cli_pull_shows_a_progress_bar(
    tmp_path: Path,
    served: Served,
    base_url: str,
    gguf_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    served.repos[REPO] = {"tiny.Q4_K_M.gguf": gguf_bytes}
    monkeypatch.setenv("IAFORALL_HOME", str(tmp_path))
    monkeypatch.setenv("FORCE_COLOR", "1")  # draw the bar although stderr is captured
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["pull", f"hf.co/{REPO}:Q4_K_M"]) == 0
    out, err = capsys.readouterr()
    kb = f"{len(gguf_bytes) / 1000:.1f}"
    assert "━" in err and f"{kb}/{kb} kB" in err  # rich's bar, with the bytes done
    sha = hashlib.sha256(gguf_bytes).hexdigest()
    assert out.startswith("tiny-model:q4_k_m is ready") and sha[:12] in out
    assert (tmp_path / "models" / "tiny-model@q4_k_m.gguf").read_bytes() == gguf_bytes


def test_cli_pull_errors_are_one_line(
    tmp_path: Path,
    served: Served,
    base_url: str,
    gguf_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    served.files["/m.gguf"] = gguf_bytes
    monkeypatch.setenv("IAFORALL_HOME", str(tmp_path))
    monkeypatch.delenv("IAFORALL_PULL_ALLOW_PRIVATE", raising=False)
    assert main(["pull", f"{base_url}/m.gguf"]) == 1
    assert "IAFORALL_PULL_ALLOW_PRIVATE=true" in capsys.readouterr().err
    assert main(["pull", f"{base_url}/m.gguf", "--name", "../../etc/passwd"]) == 1
    assert "not a valid model name" in capsys.readouterr().err
    monkeypatch.setenv("IAFORALL_PULL_ALLOW_PRIVATE", "true")
    assert main(["pull", f"{base_url}/m.gguf", "--sha256", "f" * 64]) == 1
    assert "failed its checksum" in capsys.readouterr().err
    assert (
        main(["pull", f"{base_url}/m.gguf", "--sha256", hashlib.sha256(gguf_bytes).hexdigest()])
        == 0
    )
    assert capsys.readouterr().out.startswith("m:latest is ready")


@pytest.fixture
async def api(tmp_path: Path, base_url: str) -> AsyncIterator[str]:
    stock_store(tmp_path)
    settings = fake_settings(tmp_path)
    settings = settings.model_copy(
        update={
            "store": StoreSettings(home=tmp_path, install_missing=False, pull_allow_private=True)
        }
    )
    async with served_app(create_app(settings)) as url:
        yield url


async def test_api_pull_streams_progress_to_the_ollama_client(
    api: str, served: Served, gguf_bytes: bytes, projector_bytes: bytes
) -> None:
    served.repos[REPO] = {"tiny.Q4_K_M.gguf": gguf_bytes, "mmproj-model-f16.gguf": projector_bytes}
    client = ollama.Client(host=api, timeout=30)
    events = await asyncio.to_thread(lambda: list(client.pull(f"hf.co/{REPO}:Q4_K_M", stream=True)))
    assert events[0].status == "pulling manifest" and events[-1].status == "success"
    assert any(
        e.status == "pulling tiny.Q4_K_M.gguf" and e.total == len(gguf_bytes) == e.completed
        for e in events
    )
    names = [m.model for m in (await asyncio.to_thread(client.list)).models]
    assert "tiny-model:q4_k_m" in names
    shown = await asyncio.to_thread(client.show, "tiny-model:q4_k_m")
    assert shown.capabilities and "vision" in shown.capabilities
    # ... and by the name it was pulled with, as Ollama's clients go on to use it.
    same = await asyncio.to_thread(client.show, f"hf.co/{REPO}:Q4_K_M")
    assert same.modelinfo == shown.modelinfo
    with pytest.raises(ollama.ResponseError):
        await asyncio.to_thread(client.show, f"hf.co/{REPO}:Q8_0")


async def test_api_pull_refusals(api: str, served: Served, base_url: str) -> None:
    served.files["/fake.gguf"] = b"not a model" * 100
    client = ollama.Client(host=api, timeout=30)
    with pytest.raises(ollama.ResponseError) as raised:
        await asyncio.to_thread(lambda: list(client.pull(f"{base_url}/fake.gguf", stream=True)))
    assert "not a GGUF" in str(raised.value)
    async with httpx.AsyncClient(base_url=api) as http:
        r = await http.post("/api/pull", json={"model": "../../etc/passwd"})
        assert r.status_code == 400 and "not a valid model name" in r.json()["error"]
        r = await http.post("/api/pull", json={"model": "/etc/passwd"})
        assert r.status_code == 400
        r = await http.post("/api/pull", json={"model": "hf://a/b/../../x.gguf"})
        assert r.status_code == 400
