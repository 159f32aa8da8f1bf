"""The answer pipeline as every dialect's routes get it, and the language of the rules' messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from iaforall.answering import Pipeline
from iaforall.api.deps import services
from iaforall.api.policy import policy_of, preferred_language
from iaforall.policy.gate import Policy
from iaforall.services import Services
from iaforall.vision import ImageReader


async def pipeline_of(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    policy: Annotated[Policy, Depends(policy_of)],
) -> Pipeline:
    return Pipeline(
        dispatcher=svc.dispatcher,
        gate=svc.gate,
        pool=svc.pool,
        retriever=svc.knowledge.retriever,
        reader=ImageReader.of(request.app.state, svc.settings.images),
        policy=policy,
        default_keep_alive=svc.settings.engine.keep_alive,
    )


PipelineDep = Annotated[Pipeline, Depends(pipeline_of)]


def language_of(request: Request) -> str | None:
    """The language the rules' messages are given in: the client's first choice."""
    return preferred_language(request.headers.get("accept-language", ""))
