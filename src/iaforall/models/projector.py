"""Where a vision-language model keeps its projector: beside its GGUF, as `mmproj-<file>`."""

from __future__ import annotations

from pathlib import Path


def projector_for(model: Path) -> Path | None:
    """The model's vision projector (llama.cpp's mmproj GGUF), or None for a text-only model."""
    projector = model.with_name(f"mmproj-{model.name}")
    return projector if projector.is_file() else None
