"""Read the metadata of a GGUF file: family, quantization, context length, chat template.

Only the key/value header is parsed. `gguf.GGUFReader` also decodes every tensor descriptor and
every vocabulary string into numpy views, which takes ~2.5 s for SmolLM2's 49k-token vocabulary
and far longer for Qwen's 151k tokens and merges; listing models must not wait for that. The
format constants (value types, file types) still come from the `gguf` package.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from iaforall.core.errors import ModelStoreError

GGUF_MAGIC = b"GGUF"

# Size in bytes and struct code of each scalar value type.
_SCALARS: dict[int, tuple[int, str]] = {
    gguf.GGUFValueType.UINT8: (1, "B"),
    gguf.GGUFValueType.INT8: (1, "b"),
    gguf.GGUFValueType.UINT16: (2, "H"),
    gguf.GGUFValueType.INT16: (2, "h"),
    gguf.GGUFValueType.UINT32: (4, "I"),
    gguf.GGUFValueType.INT32: (4, "i"),
    gguf.GGUFValueType.FLOAT32: (4, "f"),
    gguf.GGUFValueType.BOOL: (1, "?"),
    gguf.GGUFValueType.UINT64: (8, "Q"),
    gguf.GGUFValueType.INT64: (8, "q"),
    gguf.GGUFValueType.FLOAT64: (8, "d"),
}
_STRING = int(gguf.GGUFValueType.STRING)
_ARRAY = int(gguf.GGUFValueType.ARRAY)


@dataclass(frozen=True, slots=True)
class GGUFMetadata:
    """What IAForAll needs to know about a model file, read from its GGUF header."""

    family: str
    name: str | None = None
    quantization: str | None = None
    context_length: int | None = None
    parameter_size: str | None = None
    supports_tools: bool = False
    has_chat_template: bool = False


def is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def quantization_name(file_type: int) -> str:
    """`general.file_type` as llama.cpp names it: 15 -> "Q4_K_M", 0 -> "F32"."""
    try:
        name = gguf.LlamaFileType(file_type).name
    except ValueError:
        return f"unknown ({file_type})"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def read_metadata(path: Path) -> GGUFMetadata:
    """Read a GGUF file's header; a file that is not GGUF raises `ModelStoreError`."""
    fields = read_fields(path)
    arch = fields.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise ModelStoreError(f"{path} is a GGUF file without `general.architecture`: not a model.")
    file_type = fields.get("general.file_type")
    context = fields.get(f"{arch}.context_length")
    template = fields.get("tokenizer.chat_template")
    return GGUFMetadata(
        family=arch,
        name=_str_or_none(fields.get("general.name")),
        quantization=quantization_name(file_type) if isinstance(file_type, int) else None,
        context_length=context if isinstance(context, int) else None,
        parameter_size=_str_or_none(fields.get("general.size_label")),
        supports_tools=isinstance(template, str) and "tools" in template,
        has_chat_template=isinstance(template, str) and bool(template),
    )


def read_fields(path: Path) -> dict[str, Any]:
    """The scalar and string key/values of a GGUF header; arrays (vocabulary...) are skipped."""
    try:
        with path.open("rb") as f:
            if f.read(4) != GGUF_MAGIC:
                raise ModelStoreError(
                    f"{path} is not a GGUF model file (it does not start with 'GGUF'). "
                    "IAForAll runs GGUF models, as made by llama.cpp's converters."
                )
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _Header(buf, path).parse()
    except OSError as e:
        raise ModelStoreError(f"Cannot read {path}: {e.strerror or e}.") from e
    except (struct.error, UnicodeDecodeError, IndexError) as e:
        raise ModelStoreError(
            f"{path} is a damaged GGUF file (its header is cut or corrupt)."
        ) from e


class _Header:
    def __init__(self, buf: mmap.mmap, path: Path) -> None:
        self.buf = buf
        self.path = path
        self.pos = 4
        self.order = "<"

    def parse(self) -> dict[str, Any]:
        (version,) = struct.unpack_from("<I", self.buf, self.pos)
        if version & 0xFFFF == 0:  # written on a big-endian machine
            self.order = ">"
            version = struct.unpack_from(">I", self.buf, self.pos)[0]
        if version not in (2, 3):
            raise ModelStoreError(
                f"{self.path} uses GGUF version {version}; only versions 2 and 3 are supported."
            )
        self.pos += 4
        _tensor_count, kv_count = self._unpack("QQ")
        fields: dict[str, Any] = {}
        for _ in range(kv_count):
            key = self._string()
            (vtype,) = self._unpack("I")
            if vtype == _ARRAY:
                self._skip_array()
            else:
                fields[key] = self._value(vtype)
        return fields

    def _unpack(self, codes: str) -> tuple[Any, ...]:
        fmt = self.order + codes
        values = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def _advance(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise struct.error("past the end of the file")
        self.pos += n

    def _string(self) -> str:
        (length,) = self._unpack("Q")
        start = self.pos
        self._advance(length)
        return self.buf[start : self.pos].decode("utf-8")

    def _value(self, vtype: int) -> Any:
        if vtype == _STRING:
            return self._string()
        if vtype not in _SCALARS:
            raise struct.error(f"unknown value type {vtype}")
        (value,) = self._unpack(_SCALARS[vtype][1])
        return value

    def _skip_array(self) -> None:
        item_type, count = self._unpack("IQ")
        if item_type == _STRING:
            fmt = self.order + "Q"
            for _ in range(count):  # ~0.1 s for Qwen's 300k strings
                (length,) = struct.unpack_from(fmt, self.buf, self.pos)
                self._advance(8 + length)
        elif item_type == _ARRAY:
            for _ in range(count):
                self._skip_array()
        elif item_type in _SCALARS:
            self._advance(_SCALARS[item_type][0] * count)
        else:
            raise struct.error(f"unknown array item type {item_type}")


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
