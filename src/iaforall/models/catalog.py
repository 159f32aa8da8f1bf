"""Every model this server answers with, and what it does: the store's GGUF models (chat) and
the runtimes (speech to text, text to speech, embeddings, OCR). One list for /v1/models,
/api/tags and the web app's model picker, each taking the kinds it can use."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from iaforall.engines.runtime import Kind, Runtimes
from iaforall.models.store import ModelStore


@dataclass(frozen=True, slots=True)
class ListedModel:
    id: str
    kind: Kind
    created: int  # seconds since the epoch it was added; 0: it ships with the server
    aliases: tuple[str, ...] = ()  # other names that reach it (e.g. whisper-1, tts-1-hd)


def list_models(
    store: ModelStore, runtimes: Runtimes, kinds: Collection[Kind] | None = None
) -> list[ListedModel]:
    """The models of these kinds (all when None): the store's first, by name, then the
    runtimes. A GGUF model in the store is listed as chat (it also gives embeddings)."""
    found = [ListedModel(m.name, "chat", int(m.added_at.timestamp())) for m in store.list()]
    found += [ListedModel(s.model, s.kind, 0, s.aliases) for s in runtimes.specs()]
    return [m for m in found if kinds is None or m.kind in kinds]


def find_model(store: ModelStore, runtimes: Runtimes, name: str) -> ListedModel | None:
    """One model by its name or an alias (for GET /v1/models/{id}); None if there is none."""
    info = store.get(name)
    if info is not None:
        return ListedModel(info.name, "chat", int(info.added_at.timestamp()))
    model = runtimes.find(name)
    if model is None:
        return None
    spec = next(s for s in runtimes.specs() if s.model == model)
    return ListedModel(spec.model, spec.kind, 0, spec.aliases)
