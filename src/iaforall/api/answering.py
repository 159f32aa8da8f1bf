"""The answer pipeline as every dialect's routes get it, the language of the rules' messages
and our `iaforall` fields that ride in answers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from iaforall.answering import Pipeline, Streamed, Whole
from iaforall.api.deps import services
from iaforall.api.policy import policy_of, preferred_language
from iaforall.policy.gate import Policy, decisions_field
from iaforall.services import Services


async def pipeline_of(
    svc: Annotated[Services, Depends(services)],
    policy: Annotated[Policy, Depends(policy_of)],
) -> Pipeline:
    return svc.pipeline(policy)


PipelineDep = Annotated[Pipeline, Depends(pipeline_of)]


def language_of(request: Request) -> str | None:
    """The language the rules' messages are given in: the client's first choice."""
    return preferred_language(request.headers.get("accept-language", ""))


def merged(fields: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Our `iaforall` fields with more of them; the rules' decisions add up."""
    out = {**fields, **more}
    if "decisions" in fields and "decisions" in more:
        out["decisions"] = [*fields["decisions"], *more["decisions"]]
    return out


def extension_fields(answer: Streamed | Whole, *, cites: bool) -> dict[str, Any]:
    """Our `iaforall` field for an answer: the rules' decisions (on the input for one that
    streams, whose output decisions come as events; on both for a whole one), the passages
    cited when knowledge was asked for, the prompt when it was asked for."""
    fields = decisions_field(answer.decisions)
    if cites:
        fields["citations"] = [c.to_json() for c in answer.citations]
    if answer.prompt is not None:
        fields["prompt"] = answer.prompt
    return fields
