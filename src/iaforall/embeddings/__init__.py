"""Embeddings: text to vectors, for POST /v1/embeddings and for knowledge bases.

`use:multilingual` (the default) is the built-in multilingual sentence encoder (`encoder.py`);
any GGUF model in the store also gives embeddings through llama.cpp (`gguf.py`). `Embeddings`
(`service.py`) picks the model, checks the limits and runs the work in turn.
"""

from iaforall.embeddings.service import (
    ALIASES,
    Embedded,
    EmbeddingModel,
    Embeddings,
    builtin_models,
    normalize_inputs,
)

__all__ = [
    "ALIASES",
    "Embedded",
    "EmbeddingModel",
    "Embeddings",
    "builtin_models",
    "normalize_inputs",
]
