"""/api/embed (and the older /api/embeddings): a thin adapter onto `iaforall.embeddings`,
in turn with all the other work, charged to the asker like /v1/embeddings."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services
from iaforall.api.ollama.schemas import EmbedBody
from iaforall.api.openapi import json_doc
from iaforall.core.errors import InvalidRequest
from iaforall.core.types import ModelId, Principal, Usage
from iaforall.embeddings import Embedded
from iaforall.people.quotas import role_weight
from iaforall.services import Services

router = APIRouter(prefix="/api", tags=["Ollama-compatible"])

ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def _embedded(
    request: Request, svc: Services, me: Principal, inputs: Callable[[EmbedBody], Any]
) -> Embedded:
    body = await json_body(request, EmbedBody)
    model = svc.embeddings.resolve(body.model)
    svc.embeddings.check_dimensions(model, body.dimensions)
    async with svc.gate.job(me, ModelId(model.name)) as report:  # the person's quotas
        result = await svc.embeddings.embed(
            model.name,
            inputs(body),
            user=me.user,
            weight=role_weight(svc.settings.people, me.role),
        )
        report(Usage(result.prompt_tokens, 0))
    return result


def _input(body: EmbedBody) -> Any:
    if body.input is None:
        raise InvalidRequest("Missing required parameter 'input'.", param="input")
    return body.input


def _prompt(body: EmbedBody) -> Any:
    if not body.prompt:
        raise InvalidRequest("Missing required parameter 'prompt'.", param="prompt")
    return body.prompt


def _rows(result: Embedded) -> list[list[float]]:
    rounded: list[list[float]] = np.round(result.vectors.astype(np.float64), 9).tolist()
    return rounded


@router.post("/embed", response_model=None, openapi_extra=json_doc(EmbedBody))
async def embed(request: Request, svc: ServicesDep, me: PrincipalDep) -> Response:
    started = time.perf_counter_ns()
    result = await _embedded(request, svc, me, _input)
    rows = await asyncio.to_thread(_rows, result)
    answer = {
        "model": result.model,
        "embeddings": rows,
        "total_duration": time.perf_counter_ns() - started,
        "load_duration": 0,
        "prompt_eval_count": result.prompt_tokens,
    }
    return Response(json.dumps(answer, separators=(",", ":")), media_type="application/json")


@router.post("/embeddings", response_model=None, openapi_extra=json_doc(EmbedBody))
async def embeddings(request: Request, svc: ServicesDep, me: PrincipalDep) -> Response:
    """The older endpoint: one `prompt`, one `embedding`."""
    result = await _embedded(request, svc, me, _prompt)
    rows = await asyncio.to_thread(_rows, result)
    body = json.dumps({"embedding": rows[0]}, separators=(",", ":"))
    return Response(body, media_type="application/json")
