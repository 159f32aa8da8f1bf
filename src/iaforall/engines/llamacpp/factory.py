"""Builds a llama.cpp engine for a stored model (the pool's EngineFactory)."""

from __future__ import annotations

import re
from pathlib import Path

from iaforall.core.types import ModelId
from iaforall.engines.llamacpp.engine import LlamaCppEngine
from iaforall.engines.pool import EngineFactory, ModelEntry
from iaforall.engines.protocol import Capabilities, Engine
from iaforall.models.projector import projector_for
from iaforall.models.system_prompt import uses_builtin_prompt
from iaforall.settings import EngineSettings

__all__ = ["llamacpp_factory", "projector_for"]


def llamacpp_factory(
    settings: EngineSettings, log_dir: Path, *, read_timeout: float
) -> EngineFactory:
    def build(entry: ModelEntry, capabilities: Capabilities, threads: int = 0) -> Engine:
        mmproj = projector_for(entry.path)
        lookup = settings.uses_prompt_lookup(model_bytes=entry.size, vision=mmproj is not None)
        return LlamaCppEngine(
            ModelId(entry.name),
            entry.path,
            capabilities,
            threads=threads or settings.resolved_threads(),
            log_file=log_dir / f"{re.sub(r'[^A-Za-z0-9._-]', '_', entry.name)}.log",
            load_timeout=settings.load_timeout,
            read_timeout=read_timeout,
            template_default_system=uses_builtin_prompt(
                settings.template_default_system, entry.sha256
            ),
            mmproj=mmproj,
            prompt_cache_mb=settings.prompt_cache_mb,
            prompt_lookup=lookup,
        )

    return build
