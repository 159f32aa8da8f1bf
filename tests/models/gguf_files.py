"""Tiny but valid GGUF files, written with gguf's own writer (an independent implementation)."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

TOOLS_TEMPLATE = (
    "{% if tools %}{{ tools | tojson }}{% endif %}"
    "{% for m in messages %}{{ m.content }}{% endfor %}"
)


def write_gguf(
    path: Path,
    *,
    arch: str = "llama",
    name: str | None = "Tiny Test Model",
    context_length: int | None = 2048,
    file_type: int | None = gguf.LlamaFileType.MOSTLY_Q4_K_M,
    chat_template: str | None = TOOLS_TEMPLATE,
    size_label: str | None = "1K",
    big_endian: bool = False,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    endian = gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
    writer = gguf.GGUFWriter(path, arch, endianess=endian)
    if name:
        writer.add_name(name)
    if context_length is not None:
        writer.add_context_length(context_length)
    if file_type is not None:
        writer.add_file_type(file_type)
    if size_label:
        writer.add_size_label(size_label)
    # Arrays come before the template, as in real files: the reader must skip them exactly.
    writer.add_token_list([f"tok{i}" for i in range(300)] + ["é", ""])
    writer.add_array("tokenizer.ggml.scores", [float(i) for i in range(302)])
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    writer.add_uint32("tokenizer.ggml.bos_token_id", 1)
    writer.add_bool("tiny.flag", True)
    writer.add_tensor("token_embd.weight", np.arange(64, dtype=np.float32).reshape(8, 8))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
