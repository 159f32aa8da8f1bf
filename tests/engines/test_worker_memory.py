"""The llama.cpp worker's RAM for idle slots' prompts is bounded (llama.cpp alone: 8 GiB)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import xllamacpp

from iaforall.engines.llamacpp import worker
from iaforall.engines.llamacpp.factory import llamacpp_factory
from iaforall.engines.protocol import Capabilities
from iaforall.settings import EngineSettings

BASE = ["--model", "m.gguf", "--alias", "m", "--threads", "1", "--parallel", "1"]
BASE += ["--ctx-per-slot", "512"]


def started_with(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> Any:
    """The parameters the worker gives llama.cpp's server for `argv`."""
    seen: list[Any] = []

    class Server:
        listening_address = "http://127.0.0.1:1"

        def __init__(self, params: Any) -> None:
            seen.append(params)

    monkeypatch.setattr(xllamacpp, "Server", Server)
    monkeypatch.setattr(worker.os, "dup2", lambda *a: None)
    monkeypatch.setattr(worker.sys, "stdin", io.StringIO(""))
    assert worker.main(argv) == 0
    return seen[-1]


def test_the_prompt_cache_is_bounded_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert xllamacpp.CommonParams().cache_ram_mib == 8192  # what we bound
    assert started_with(monkeypatch, BASE).cache_ram_mib == 256


def test_the_bound_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IAFORALL_PROMPT_CACHE_MB", "64")
    build = llamacpp_factory(EngineSettings(), tmp_path, read_timeout=5)
    entry = SimpleNamespace(name="m", path=tmp_path / "m.gguf", sha256="0" * 64, size=1)
    engine = build(entry, Capabilities(slots=1, context_length=512, tools=False))  # type: ignore[arg-type]
    args: list[str] = engine.worker_args()  # type: ignore[attr-defined]
    assert args[args.index("--cache-ram-mb") + 1] == "64"
    assert started_with(monkeypatch, args).cache_ram_mib == 64
