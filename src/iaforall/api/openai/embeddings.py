"""POST /v1/embeddings in OpenAI's shape: a thin adapter onto `iaforall.embeddings`."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services
from iaforall.api.openapi import json_doc
from iaforall.core.types import ModelId, Principal, Usage
from iaforall.embeddings import Embedded
from iaforall.people.quotas import role_weight
from iaforall.services import Services

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]


class EmbeddingBody(BaseModel):
    """`user` and other fields that change nothing are accepted and ignored, as OpenAI does."""

    model_config = ConfigDict(extra="allow")

    input: Any  # checked by iaforall.embeddings.normalize_inputs, with clear messages
    model: str | None = None  # None: IAFORALL_EMBEDDING_MODEL
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


@router.post("/embeddings", response_model=None, openapi_extra=json_doc(EmbeddingBody))
async def embeddings(request: Request, svc: ServicesDep, me: PrincipalDep) -> Response:
    body = await json_body(request, EmbeddingBody)
    model = svc.embeddings.resolve(body.model)
    svc.embeddings.check_dimensions(model, body.dimensions)
    async with svc.gate.job(me, ModelId(model.name)) as report:  # the person's quotas
        result = await svc.embeddings.embed(
            model.name,
            body.input,
            user=me.user,
            weight=role_weight(svc.settings.people, me.role),
        )
        report(Usage(result.prompt_tokens, 0))
    # A long list of floats takes a while to write: not on the event loop.
    content = await asyncio.to_thread(_render, result, body.encoding_format)
    return Response(content, media_type="application/json")


def _render(result: Embedded, encoding: str) -> bytes:
    vectors = result.vectors.astype("<f4")
    data: list[dict[str, Any]] = [
        {
            "object": "embedding",
            "index": i,
            "embedding": (
                base64.b64encode(row.tobytes()).decode("ascii")
                if encoding == "base64"
                else np.round(row.astype(np.float64), 9).tolist()  # float32's precision
            ),
        }
        for i, row in enumerate(vectors)
    ]
    tokens = result.prompt_tokens
    answer = {
        "object": "list",
        "data": data,
        "model": result.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return json.dumps(answer, separators=(",", ":")).encode()
