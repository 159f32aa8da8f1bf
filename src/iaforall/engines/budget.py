"""The memory budget: how much a model costs resident, and which idle models make room.

The policy is pure (`plan`), so it is tested as a table; the pool (engines/pool.py) applies it.
A model's cost is an estimate made before it loads: its GGUF file (llama.cpp maps all of it)
plus the KV cache for its context and slots (f16, from the file's layer and head counts) plus a
fixed allowance for llama.cpp's compute buffers. The estimate, not the worker's RSS, is what is
counted: RSS grows lazily as the mapped file is touched, so it would let a load pass the budget.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

from iaforall.core.errors import EngineUnavailable, InvalidRequest, ModelStoreError
from iaforall.models.gguf_meta import read_fields

log = logging.getLogger(__name__)

MiB = 1024 * 1024
COMPUTE_ALLOWANCE = 64 * MiB  # llama.cpp's compute buffers and the worker process itself
KV_BYTES = 2  # f16 keys and values


class ModelTooLarge(InvalidRequest):
    """The model alone needs more than the whole memory budget."""

    code = "model_too_large"


class MemoryBudgetFull(EngineUnavailable):
    """Every resident model is busy and no room was freed in time."""

    code = "memory_budget_full"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A resident model as the policy sees it."""

    model: Hashable
    size: int
    busy: bool
    last_used: float


def plan(residents: Sequence[Candidate], need: int, budget: int) -> list[Hashable] | None:
    """The models to unload so `need` more bytes fit, least recently used idle first.

    [] when it fits already; None when even unloading every idle model is not enough (the
    caller waits for a busy one to finish). A model larger than the budget is the caller's
    check (`ModelTooLarge`), since no waiting helps it.
    """
    used = sum(r.size for r in residents)
    victims: list[Hashable] = []
    for r in sorted((r for r in residents if not r.busy), key=lambda r: r.last_used):
        if used + need <= budget:
            break
        victims.append(r.model)
        used -= r.size
    return victims if used + need <= budget else None


def physical_memory() -> int:
    """Bytes of RAM in this machine (or 0 when unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def budget_bytes(setting_mb: int, share: float = 0.5) -> int:
    """The budget: the setting in MiB, or by default half the physical RAM (0: no limit)."""
    if setting_mb > 0:
        return setting_mb * MiB
    return int(physical_memory() * share)


def kv_cache_bytes(fields: dict[str, object], tokens: int) -> int:
    """The f16 KV cache for `tokens` positions, from the GGUF header's shape (0 if unknown)."""
    arch = fields.get("general.architecture")
    layers = fields.get(f"{arch}.block_count")
    width = fields.get(f"{arch}.embedding_length")
    heads = fields.get(f"{arch}.attention.head_count")
    kv_heads = fields.get(f"{arch}.attention.head_count_kv", heads)
    if not all(isinstance(v, int) and v > 0 for v in (layers, width, heads, kv_heads)):
        return 0
    assert isinstance(layers, int) and isinstance(width, int)
    assert isinstance(heads, int) and isinstance(kv_heads, int)
    per_token = 2 * layers * (width * kv_heads // heads) * KV_BYTES  # keys and values
    return per_token * tokens


def estimate(path: Path, file_size: int, tokens: int) -> int:
    """What a model costs resident: file + KV cache for `tokens` (context x slots) + buffers."""
    try:
        kv = kv_cache_bytes(read_fields(path), tokens)
    except ModelStoreError as e:
        log.warning("cannot read %s to size its KV cache: %s", path, e)
        kv = 0
    return file_size + kv + COMPUTE_ALLOWANCE
