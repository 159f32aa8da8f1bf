"""/v1: the OpenAI-compatible endpoints, thin translators onto the answer pipeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from iaforall.answering import KnowledgeAsk, Pipeline, Question
from iaforall.api.answering import (
    PipelineDep,
    builtin_prompt_field,
    extension_fields,
    language_of,
)
from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, user_of
from iaforall.api.extension import KnowledgeOptions
from iaforall.api.openai.schemas import ChatCompletionBody, CompletionBody
from iaforall.api.openai.stream import sse
from iaforall.api.openapi import json_doc
from iaforall.api.streaming import SSE_HEADERS, cancel_on_disconnect, queue_headers
from iaforall.core.types import Principal, UserId

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

UserDep = Annotated[UserId, Depends(user_of)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]


@router.post("/chat/completions", response_model=None, openapi_extra=json_doc(ChatCompletionBody))
async def chat_completions(request: Request, pipeline: PipelineDep, me: PrincipalDep) -> Response:
    body = await json_body(request, ChatCompletionBody)
    extension = body.iaforall
    question = Question(
        body.to_core(me.user),
        kind="chat",
        language=language_of(request),
        knowledge=_knowledge(extension.knowledge),
        keep_alive=extension.keep_alive,
        return_prompt=extension.return_prompt,
    )
    cites = extension.knowledge is not None
    return await _answer(request, pipeline, me, question, body.include_usage, cites=cites)


@router.post("/chat/prompt", openapi_extra=json_doc(ChatCompletionBody))
async def chat_prompt(request: Request, pipeline: PipelineDep, user: UserDep) -> dict[str, Any]:
    """What the model would be given for this chat: the exact text its template renders."""
    body = await json_body(request, ChatCompletionBody)
    chat = body.to_core(user)
    question = Question(chat, knowledge=_knowledge(body.iaforall.knowledge))
    model, prompt = await pipeline.prompt(question)
    builtin = await builtin_prompt_field(pipeline, model, chat.messages)
    return {
        "object": "chat.prompt",
        "model": model,
        "prompt": prompt,
        "builtin_system_prompt": builtin,
    }


@router.post("/completions", response_model=None, openapi_extra=json_doc(CompletionBody))
async def completions(request: Request, pipeline: PipelineDep, me: PrincipalDep) -> Response:
    body = await json_body(request, CompletionBody)
    question = Question(body.to_core(me.user), kind="completion", language=language_of(request))
    return await _answer(request, pipeline, me, question, body.include_usage, cites=False)


def _knowledge(asked: KnowledgeOptions | None) -> KnowledgeAsk | None:
    if asked is None:
        return None
    return KnowledgeAsk(tuple(asked.bases), tuple(asked.files), asked.k)


async def _answer(
    request: Request,
    pipeline: Pipeline,
    me: Principal,
    question: Question,
    include_usage: bool,
    *,
    cites: bool,
) -> Response:
    """The answer, whole or streamed, with our `iaforall` field: the rules' decisions on
    input and output, the prompt and the citations when asked for."""
    if not question.generation.stream:
        whole = await cancel_on_disconnect(request, pipeline.whole(me, question))
        fields = extension_fields(whole, cites=cites)
        result = whole.result
        if fields:
            result["iaforall"] = {**result.get("iaforall", {}), **fields}
        return JSONResponse(result, headers=queue_headers(whole.admission))
    streamed = await pipeline.stream(me, question)
    fields = extension_fields(streamed, cites=cites)
    return StreamingResponse(
        sse(streamed.events, fields, include_usage=include_usage),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **queue_headers(streamed.admission)},
    )
