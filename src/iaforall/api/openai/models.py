"""GET /v1/models: every model the OpenAI API can be asked to use, and what it does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from iaforall.api.deps import services
from iaforall.core.errors import ModelNotFound
from iaforall.engines.runtime import Kind
from iaforall.models import catalog
from iaforall.models.catalog import ListedModel
from iaforall.services import Services

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

ServicesDep = Annotated[Services, Depends(services)]

# What the OpenAI API can be asked to do: the OCR runtime only serves the other models.
_CALLABLE: tuple[Kind, ...] = ("chat", "speech_to_text", "text_to_speech", "embeddings", "image")


def _model_object(model: ListedModel) -> dict[str, Any]:
    """OpenAI's model object, with what the model does under our `iaforall` field."""
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": "iaforall",
        "iaforall": {"kind": model.kind, "aliases": list(model.aliases)},
    }


@router.get("/models")
async def list_models(svc: ServicesDep) -> dict[str, Any]:
    """The store's models, then speech to text, text to speech, embeddings and image models."""
    listed = catalog.list_models(svc.store, svc.pool.runtimes, _CALLABLE)
    return {"object": "list", "data": [_model_object(m) for m in listed]}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, svc: ServicesDep) -> dict[str, Any]:
    found = catalog.find_model(svc.store, svc.pool.runtimes, model_id)
    if found is None or found.kind not in _CALLABLE:
        raise ModelNotFound(model_id)
    return _model_object(found)
