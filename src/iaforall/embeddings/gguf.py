"""Embeddings from any GGUF model, through llama.cpp's embedding mode.

A model asked for embeddings gets a worker of its own (the same supervised worker process as for
chat, started with `--embedding`), kept in a pool of its own that loads on first use and unloads
when idle. An embedding model declares its pooling in its GGUF header (`<arch>.pooling_type`),
and llama.cpp uses it; a chat model declares none and gets mean pooling (its embeddings are
usable, if poor). Every vector comes back with length 1.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt

from iaforall.core.errors import (
    ContextLengthExceeded,
    IAForAllError,
    InvalidRequest,
    ModelStoreError,
    RequestTimeout,
)
from iaforall.core.types import ModelId
from iaforall.engines.llamacpp.engine import LlamaCppEngine
from iaforall.engines.llamacpp.errors import error_from_body
from iaforall.engines.pool import EngineFactory, ModelEntry
from iaforall.engines.protocol import Capabilities, Engine
from iaforall.models.gguf_meta import read_fields
from iaforall.settings import EngineSettings

Inputs = list[str] | list[list[int]]
_POOLINGS = {1: "mean", 2: "cls", 3: "last"}  # llama.cpp's enum llama_pooling_type


def shape_of(path: Path) -> tuple[int, str | None]:
    """The model's vector size, and its own pooling (None: it declares none)."""
    fields = read_fields(path)
    arch = fields.get("general.architecture")
    size = fields.get(f"{arch}.embedding_length")
    if not isinstance(size, int) or size <= 0:
        raise ModelStoreError(f"{path.name} does not say how long its embeddings are.")
    pooling = fields.get(f"{arch}.pooling_type")
    return size, _POOLINGS.get(pooling) if isinstance(pooling, int) else None


class EmbeddingEngine(LlamaCppEngine):
    """A llama.cpp worker in embedding mode."""

    def __init__(self, *args: Any, dimensions: int, pooling: str | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dimensions = dimensions
        self.pooling = pooling

    def worker_args(self) -> list[str]:
        # No pooling of its own: mean pooling (llama.cpp refuses "none" for /v1/embeddings).
        return [*super().worker_args(), "--embedding", "--pooling", self.pooling or "mean"]

    async def embed(self, inputs: Inputs) -> tuple[npt.NDArray[np.float32], int]:
        """One vector per input (texts, or token arrays), and the tokens read."""
        client = self._ready_client()
        body = {"input": inputs, "encoding_format": "base64"}
        try:
            async with client.post("/v1/embeddings", json=body) as response:
                raw = await response.read()
                if response.status != 200:
                    raise _error(response.status, raw)
        except TimeoutError:
            raise RequestTimeout(
                f"The engine of '{self.model}' took too long to compute embeddings."
            ) from None
        except aiohttp.ClientError:
            raise self._crashed() from None
        answer = json.loads(raw)
        rows = sorted(answer["data"], key=lambda d: int(d["index"]))
        vectors = np.stack(
            [np.frombuffer(base64.b64decode(row["embedding"]), dtype="<f4") for row in rows]
        ).astype(np.float32)
        return vectors, int((answer.get("usage") or {}).get("prompt_tokens", 0))


def _error(status: int, raw: bytes) -> IAForAllError:
    try:
        message = str(json.loads(raw)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = raw[:300].decode(errors="replace")
    if "too large to process" in message:  # longer than a batch: the slot's context
        found = re.search(r"\((\d+) tokens\)", message)
        tokens = f" ({found.group(1)} tokens)" if found else ""
        return ContextLengthExceeded(
            f"An input is longer{tokens} than this model reads at once here: shorten it, or "
            "split it.",
            param="input",
        )
    if status == 400:
        return InvalidRequest(f"The model refused the input: {message}", param="input")
    return error_from_body(status, raw)


def embedding_factory(
    settings: EngineSettings, log_dir: Path, *, read_timeout: float
) -> EngineFactory:
    def build(entry: ModelEntry, capabilities: Capabilities, threads: int = 0) -> Engine:
        dimensions, pooling = shape_of(entry.path)
        return EmbeddingEngine(
            ModelId(entry.name),
            entry.path,
            capabilities,
            threads=threads or settings.resolved_threads(),
            log_file=log_dir / f"{re.sub(r'[^A-Za-z0-9._-]', '_', entry.name)}.embeddings.log",
            load_timeout=settings.load_timeout,
            read_timeout=read_timeout,
            template_default_system=False,
            dimensions=dimensions,
            pooling=pooling,
        )

    return build
