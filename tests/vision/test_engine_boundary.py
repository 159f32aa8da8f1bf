"""(a) A vision-language model: no such model ships here, so this is tested at the engine
boundary: the worker is started with the projector, and image parts reach llama.cpp unchanged."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import xllamacpp

from iaforall.core.types import ChatRequest, ModelId
from iaforall.engines.llamacpp import worker
from iaforall.engines.llamacpp.engine import LlamaCppEngine
from iaforall.engines.llamacpp.payload import chat_body
from iaforall.engines.protocol import Capabilities
from iaforall.models.projector import projector_for
from iaforall.settings import ImageSettings
from iaforall.vision import ImageReader, read_images
from tests.vision.images import data_url, text_png

IMAGE = data_url(text_png("hi"))


def engine(tmp_path: Path, mmproj: Path | None) -> LlamaCppEngine:
    return LlamaCppEngine(
        ModelId("vlm:latest"),
        tmp_path / "vlm.gguf",
        Capabilities(slots=1, context_length=2048, tools=False),
        threads=2,
        log_file=tmp_path / "vlm.log",
        load_timeout=5,
        read_timeout=5,
        template_default_system=False,
        mmproj=mmproj,
    )


def test_projector_beside_the_model_is_found(tmp_path: Path) -> None:
    model = tmp_path / "vlm.gguf"
    assert projector_for(model) is None
    (tmp_path / "mmproj-vlm.gguf").write_bytes(b"GGUF")
    assert projector_for(model) == tmp_path / "mmproj-vlm.gguf"


def test_worker_is_started_with_the_projector(tmp_path: Path) -> None:
    assert "--mmproj" not in engine(tmp_path, None).worker_args()
    args = engine(tmp_path, tmp_path / "mmproj-vlm.gguf").worker_args()
    assert args[args.index("--mmproj") + 1] == str(tmp_path / "mmproj-vlm.gguf")


def test_worker_hands_the_projector_to_llama_cpp(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[Any] = []

    class Server:
        listening_address = "http://127.0.0.1:1"

        def __init__(self, params: Any) -> None:
            seen.append(params)

    monkeypatch.setattr(xllamacpp, "Server", Server)
    monkeypatch.setattr(worker.os, "dup2", lambda *a: None)
    monkeypatch.setattr(worker.sys, "stdin", io.StringIO(""))
    base = ["--model", "m.gguf", "--alias", "m", "--threads", "1"]
    base += ["--parallel", "1", "--ctx-per-slot", "512"]
    assert worker.main([*base, "--mmproj", "mmproj-m.gguf"]) == 0
    assert seen[-1].mmproj.path == "mmproj-m.gguf"
    assert worker.main(base) == 0
    assert seen[-1].mmproj.path == ""
    assert json.loads(capsys.readouterr().out.splitlines()[0])["ready"] is True


async def test_image_parts_reach_llama_cpp_unchanged() -> None:
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}},
    ]
    asked = ChatRequest(ModelId("vlm:latest"), ({"role": "user", "content": parts},))
    checked = await read_images(asked, ImageReader(ImageSettings()), model_sees_images=True)
    body = chat_body(checked, template_default_system=False)
    assert body["messages"][1]["content"] == parts
