"""The model store: packaged models rebuilt from wheels, local GGUF files, and their metadata."""

from iaforall.models.gguf_meta import GGUFMetadata, is_gguf, read_metadata
from iaforall.models.packaged import PACKAGED, PackagedModel, PackagePart, Registry, UnknownModel
from iaforall.models.store import ModelInfo, ModelStore, Progress, canonical_name, no_progress

__all__ = [
    "PACKAGED",
    "GGUFMetadata",
    "ModelInfo",
    "ModelStore",
    "PackagePart",
    "PackagedModel",
    "Progress",
    "Registry",
    "UnknownModel",
    "canonical_name",
    "is_gguf",
    "no_progress",
    "read_metadata",
]
