"""Prompt-lookup decoding: which workers draft from their context, and how they are started."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import xllamacpp

from iaforall.engines.llamacpp.factory import llamacpp_factory
from iaforall.engines.protocol import Capabilities
from iaforall.settings import PROMPT_LOOKUP_MIN_MB, EngineSettings
from tests.engines.test_worker_memory import BASE, started_with

NGRAM_MOD = xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_MOD
NONE = xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NONE
BIG = PROMPT_LOOKUP_MIN_MB * 1_000_000
SMALL = BIG - 1


def test_the_worker_drafts_from_its_context_only_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert list(started_with(monkeypatch, BASE).speculative.types) == [NONE]
    params = started_with(monkeypatch, [*BASE, "--prompt-lookup"])
    assert list(params.speculative.types) == [NGRAM_MOD]


@pytest.mark.parametrize(
    ("setting", "size", "vision", "expected"),
    [
        ("auto", BIG, False, True),  # a model big enough to gain
        ("auto", SMALL, False, False),  # decodes too fast to gain
        ("auto", BIG, True, False),  # vision models keep llama.cpp's plain path
        ("on", SMALL, False, True),
        ("on", BIG, True, True),
        ("off", BIG, False, False),
    ],
)
def test_which_models_use_it(setting: str, size: int, vision: bool, expected: bool) -> None:
    settings = EngineSettings(prompt_lookup=setting)  # type: ignore[arg-type]
    assert settings.uses_prompt_lookup(model_bytes=size, vision=vision) is expected


@pytest.mark.parametrize(("setting", "expected"), [("on", True), ("off", False)])
def test_the_factory_starts_workers_with_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, setting: str, expected: bool
) -> None:
    monkeypatch.setenv("IAFORALL_PROMPT_LOOKUP", setting)
    build = llamacpp_factory(EngineSettings(), tmp_path, read_timeout=5)
    entry = SimpleNamespace(name="m", path=tmp_path / "m.gguf", size=BIG, sha256="0" * 64)
    engine = build(entry, Capabilities(slots=1, context_length=512, tools=False))  # type: ignore[arg-type]
    args: list[str] = engine.worker_args()  # type: ignore[attr-defined]
    assert ("--prompt-lookup" in args) is expected
    types = list(started_with(monkeypatch, args).speculative.types)
    assert types == ([NGRAM_MOD] if expected else [NONE])


def test_a_bad_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IAFORALL_PROMPT_LOOKUP", "sometimes")
    with pytest.raises(ValueError, match="prompt_lookup"):
        EngineSettings()
