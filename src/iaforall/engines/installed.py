"""The runtimes this server can make, from what is installed: each Whisper model whose package is
here, the voices, the OCR engine and the built-in sentence encoder."""

from __future__ import annotations

from iaforall.core.types import ModelId
from iaforall.embeddings import encoder
from iaforall.embeddings.service import encoder_spec
from iaforall.engines import whisper
from iaforall.engines.runtime import Runtime, RuntimeSpec
from iaforall.engines.tts.runtime import ALIASES as SPEECH_ALIASES
from iaforall.engines.tts.runtime import NAME as SPEECH
from iaforall.engines.tts.runtime import SpeakerRuntime
from iaforall.engines.whisper.runtime import WhisperRuntime
from iaforall.settings import Settings
from iaforall.vision import ocr


def installed_runtimes(settings: Settings) -> list[RuntimeSpec]:
    voice = settings.voice
    threads = voice.whisper_threads or settings.engine.threads
    specs: list[RuntimeSpec] = []
    for name in whisper.installed():

        def hearing(model: whisper.WhisperModel = whisper.MODELS[name]) -> Runtime:
            return WhisperRuntime(model, settings.store.home, threads, voice.whisper_beam_size)

        aliases = tuple(a for a, target in whisper.ALIASES.items() if target == name)
        specs.append(RuntimeSpec(ModelId(name), "speech_to_text", hearing, aliases))
    # Always there: with no voice installed, it says what to install (GET /v1/audio/voices).
    specs.append(
        RuntimeSpec(
            SPEECH,
            "text_to_speech",
            lambda: SpeakerRuntime(voice.piper_keep_alive, voice.espeak),
            SPEECH_ALIASES,
        )
    )
    if ocr.installed():
        ocr_threads = settings.engine.resolved_threads()
        specs.append(RuntimeSpec(ModelId(ocr.NAME), "ocr", lambda: ocr.RapidOcr(ocr_threads)))
    if encoder.installed():
        specs.append(encoder_spec(settings))
    return specs
