"""The answer pipeline as every dialect's routes get it, the language of the rules' messages
and our `iaforall` fields that ride in answers."""

from __future__ import annotations

from collections.abc import Sequence
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


async def builtin_prompt_field(
    pipeline: Pipeline, model: str, messages: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The model's built-in system prompt as a prompt route shows it beside the prompt: its
    text (None: the template has none) and whether this chat gets it (it has no system
    message, and the server lets the template add its own)."""
    _, builtin = await pipeline.builtin_prompt(model)
    has_system = bool(messages) and messages[0].get("role") == "system"
    return {"text": builtin.text, "used": builtin.used and not has_system}


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
