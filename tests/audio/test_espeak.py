"""eSpeak NG without system packages: the `espeakng-loader` wheel's libespeak-ng, run by our
runner in a process of its own, speaks French that Whisper hears back; the server's process never
loads it; the system's `espeak-ng` is used first when there is one (this machine may have it, so
every test here asks for the pip one explicitly, or hides the system one from PATH)."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from iaforall.app import create_app
from iaforall.core.errors import EngineUnavailable
from iaforall.core.types import ModelId
from iaforall.engines import tts
from iaforall.engines.runtime import Runtime
from iaforall.engines.tts.espeak import find
from iaforall.engines.tts.runtime import SpeakerRuntime
from tests.audio.conftest import VoiceWorld, lending
from tests.audio.speech import needs_espeak
from tests.audio.test_transcriptions import sdk, words
from tests.conftest import fake_settings, served, stock_store

pytestmark = [needs_espeak, pytest.mark.timeout(120)]

FRENCH = "Bonjour, je voudrais un café et un croissant, s'il vous plaît."


def loudness(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2)))


@pytest.fixture
def no_system_espeak(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PATH without `espeak-ng` (an empty folder): as on a machine without the Debian package."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("espeak-ng") is None


def test_the_pip_one_speaks_french_out_of_process() -> None:
    espeak = find("pip")
    assert espeak is not None and espeak.kind == "pip"
    speaker = tts.Speaker(keep_alive=0, espeak="pip")
    pcm, rate = speaker.synthesize(tts.resolve("espeak:fr", "pip"), FRENCH)
    assert rate == 22050
    assert 2.0 < len(pcm) / 2 / rate < 8.0  # about 4 s of speech
    assert loudness(pcm) > 500  # not silence (16-bit full scale: 32767)
    # GPL-3.0 stays out of this process: neither the library nor the wheel's loader is here.
    assert "espeakng_loader" not in sys.modules
    if Path("/proc/self/maps").exists():
        assert "libespeak-ng" not in Path("/proc/self/maps").read_text()


def test_without_the_system_command_auto_uses_the_pip_one(no_system_espeak: None) -> None:
    espeak = find("auto")
    assert espeak is not None and espeak.kind == "pip"
    assert find("system") is None and not any(v.id == "espeak:fr" for v in tts.voices("system"))
    assert {"espeak:fr", "espeak:en", "espeak:de"} <= {v.id for v in tts.voices()}
    pcm, rate = tts.Speaker(keep_alive=0).synthesize(tts.resolve("fr"), "Bonsoir.")
    assert rate == 22050 and len(pcm) > rate and loudness(pcm) > 500


def header(wav: bytes) -> tuple[int, int, int]:
    """Channels, bytes per sample and sample rate of a WAV (its sizes ignored: the system command
    writes placeholders when it streams to stdout)."""
    assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt "
    channels, rate = int.from_bytes(wav[22:24], "little"), int.from_bytes(wav[24:28], "little")
    return channels, int.from_bytes(wav[34:36], "little") // 8, rate


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no system espeak-ng to compare")
def test_the_runner_answers_like_the_system_command() -> None:
    """The same WAV header fields and about the same audio as `espeak-ng --stdout` (the versions
    may differ: Debian's 1.51, the wheel's 1.52), so both go down the same path."""
    said: dict[str, tuple[tuple[int, int, int], int, float]] = {}
    for espeak in (find("system"), find("pip")):
        assert espeak is not None
        out = subprocess.run(
            espeak.argv("fr", 175), input=FRENCH.encode(), capture_output=True, check=True
        ).stdout
        said[espeak.kind] = (header(out), len(out) - 44, loudness(out[44:]))
    (sys_head, sys_len, sys_rms), (pip_head, pip_len, pip_rms) = said["system"], said["pip"]
    assert sys_head == pip_head == (1, 2, 22050)
    assert 0.8 < pip_len / sys_len < 1.25 and 0.8 < pip_rms / sys_rms < 1.25


def test_a_voice_the_library_lacks_is_a_clear_error() -> None:
    missing = tts.Voice("espeak:zz", "zz", "espeak-ng", "zz", "none")
    with pytest.raises(EngineUnavailable, match="no voice 'zz'"):
        tts.Speaker(keep_alive=0, espeak="pip").synthesize(missing, "Bonjour.")


def test_a_runner_that_takes_too_long_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tts, "TIMEOUT", 0.001)
    with pytest.raises(EngineUnavailable, match="too long"):
        tts.Speaker(keep_alive=0, espeak="pip").synthesize(tts.resolve("fr", "pip"), FRENCH)


async def test_the_api_speaks_french_with_the_pip_one(
    tmp_path: Path, lent: dict[ModelId, Runtime]
) -> None:
    """IAFORALL_ESPEAK=pip: the server's speech, heard back by Whisper."""
    stock_store(tmp_path)
    settings = fake_settings(tmp_path)
    settings.voice.espeak = "pip"
    hearing = {name: runtime for name, runtime in lent.items() if name.startswith("whisper")}
    voice = VoiceWorld(client=httpx.AsyncClient(), settings=settings)
    app = create_app(settings, factory=voice.factory, runtimes=lending(settings, hearing))
    voice.app = app
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        voice.client = client
        listed = (await voice.client.get("/v1/audio/voices")).json()["data"]
        assert "espeak:fr" in {v["id"] for v in listed}
        said = await sdk(voice).audio.speech.create(
            model="tts-1",
            voice="espeak:fr",  # type: ignore[arg-type]
            input=FRENCH,
            response_format="wav",
        )
        heard = await sdk(voice).audio.transcriptions.create(
            model="whisper:base", file=("fr.wav", io.BytesIO(said.content)), language="fr"
        )
        speaker = voice.runtime("tts-1")
        assert isinstance(speaker, SpeakerRuntime) and speaker.speaker.espeak == "pip"
    assert {"bonjour", "café", "croissant"} & words(heard.text), heard.text
