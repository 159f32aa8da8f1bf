from __future__ import annotations

from pathlib import Path

import pytest

from .gguf_files import write_gguf


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Path:
    return write_gguf(tmp_path / "src" / "Tiny-Model.Q4_K_M.gguf")
