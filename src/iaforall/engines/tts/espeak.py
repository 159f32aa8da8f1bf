"""Where eSpeak NG (French and the other eSpeak voices) comes from: the system's `espeak-ng`
command when it is on PATH, else the libespeak-ng that the `espeakng-loader` wheel ships (a
dependency, so `pip install iaforall` speaks French), run by `espeak_runner.py`.

Both are GPL-3.0 and both run as separate programs, once per piece of text: the server's process
never loads libespeak-ng (the wheel is only located here, never imported).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Choice = Literal["auto", "system", "pip"]
RUNNER = Path(__file__).with_name("espeak_runner.py")


@dataclass(frozen=True)
class Espeak:
    kind: Literal["system", "pip"]
    command: tuple[str, ...]  # reads text on stdin; with `-v VOICE -s RATE --stdout`, a WAV out

    def argv(self, voice: str, rate: int) -> list[str]:
        return [*self.command, "-v", voice, "-s", str(rate), "--stdout"]


def _library_name() -> str:
    if sys.platform == "win32":
        return "espeak-ng.dll"
    return "libespeak-ng.dylib" if sys.platform == "darwin" else "libespeak-ng.so"


def bundled() -> Espeak | None:
    """The wheel's libespeak-ng, run by our runner with this Python, without site packages."""
    spec = importlib.util.find_spec("espeakng_loader")  # found, not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    lib, data = folder / _library_name(), folder / "espeak-ng-data"
    if not lib.is_file() or not data.is_dir():
        return None
    runner = [sys.executable, "-I", "-S", str(RUNNER)]
    return Espeak("pip", (*runner, "--lib", str(lib), "--data", str(data)))


def system() -> Espeak | None:
    found = shutil.which("espeak-ng")
    return Espeak("system", (found,)) if found else None


def find(choice: Choice = "auto") -> Espeak | None:
    """The eSpeak NG that `choice` asks for, when it is here; `auto`: the system's first."""
    if choice == "system":
        return system()
    if choice == "pip":
        return bundled()
    return system() or bundled()
