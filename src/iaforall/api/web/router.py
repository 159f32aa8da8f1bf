"""/web/api/conversations…: the web app's conversations, thin over the store."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services, user_of
from iaforall.api.openapi import json_doc
from iaforall.api.web.catalogues import server_strings
from iaforall.api.web.export import filename_for, to_markdown
from iaforall.api.web.images import check_import, checked
from iaforall.api.web.schemas import (
    ConversationCreate,
    ConversationFull,
    ConversationPatch,
    ConversationSummary,
    ExportedConversation,
)
from iaforall.core.errors import NotFound
from iaforall.core.types import ConversationId, DocumentId, KnowledgeBaseId, Principal, UserId
from iaforall.models.catalog import list_models
from iaforall.observability.doctor import doctor
from iaforall.services import Services
from iaforall.store.conversations import NewMessage

router = APIRouter(prefix="/web/api", tags=["web app"])

ServicesDep = Annotated[Services, Depends(services)]
UserDep = Annotated[UserId, Depends(user_of)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
T = TypeVar("T")
IdOf = TypeVar("IdOf", bound=str)


async def off_loop(work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Database work runs in a thread: the event loop keeps relaying tokens meanwhile."""
    return await run_in_threadpool(work, *args, **kwargs)


@router.get("/models")
async def list_models_by_kind(svc: ServicesDep) -> dict[str, Any]:
    """Every model with what it does: the picker offers those that chat; voice in and out finds
    its Whisper model and voices here (the encoder, OCR... answer other requests)."""
    found = await off_loop(list_models, svc.store, svc.pool.runtimes)
    return {"data": [{"id": m.id, "kind": m.kind} for m in found]}


@router.get("/capabilities")
async def capabilities(svc: ServicesDep, me: PrincipalDep) -> dict[str, Any]:
    """What works on this server, why not, and the fix (`iaforall doctor`'s table): the app
    disables what is missing with that reason, and shows the table in "About this server".
    The details (paths, versions) are an administrator's."""
    rows = await off_loop(doctor, svc.settings)
    return {"data": [row.as_dict(details=me.is_admin) for row in rows]}


@router.get("/conversations")
async def list_conversations(
    svc: ServicesDep,
    user: UserDep,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    found = await off_loop(svc.conversations.list, user, q, limit)
    return {"data": [ConversationSummary.of(c).model_dump(mode="json") for c in found]}


@router.post("/conversations", status_code=201, openapi_extra=json_doc(ConversationCreate))
async def create_conversation(request: Request, svc: ServicesDep, user: UserDep) -> Any:
    body = await json_body(request, ConversationCreate)
    await off_loop(svc.knowledge.bases.readable, user, body.knowledge)
    await off_loop(svc.knowledge.bases.documents_by_id, user, body.knowledge_files)
    return await _create(svc, user, body)


@router.post("/conversations/import", status_code=201, openapi_extra=json_doc(ExportedConversation))
async def import_conversation(request: Request, svc: ServicesDep, me: PrincipalDep) -> Any:
    user = me.user
    body = await json_body(request, ExportedConversation)
    check_import(svc.settings.images, [m.images for m in body.messages])
    storage = svc.storage
    if any(m.images for m in body.messages):  # a full storage quota: nothing is fetched
        await off_loop(storage.check, me, 1)
    reader = svc.images
    messages = [
        m.to_store(await checked(reader, m.images, f"messages.{i}.images") if m.images else ())
        for i, m in enumerate(body.messages)
    ]
    # The bases and files kept are those the importing user may read (on this server: the
    # exporter's own, or shared with them); the others are left out without a word.
    bases = svc.knowledge.bases
    knowledge = await off_loop(_readable, lambda i: bases.readable(user, [i]), body.knowledge)
    files = await off_loop(
        _readable, lambda i: bases.documents_by_id(user, [i]), body.knowledge_files
    )
    images = sum(len(i.data) for m in messages for i in m.images)
    async with storage.reserve(me, images):
        return await _create(svc, user, body, messages, knowledge, files)


def _readable(check: Callable[[IdOf], object], ids: Sequence[IdOf]) -> list[IdOf]:
    """The ids that `check` finds (it raises NotFound for the others), each once."""
    kept = []
    for found in dict.fromkeys(ids):
        try:
            check(found)
        except NotFound:
            continue
        kept.append(found)
    return kept


async def _create(
    svc: Services,
    user: UserId,
    body: ConversationCreate | ExportedConversation,
    messages: Sequence[NewMessage] = (),
    knowledge: Sequence[KnowledgeBaseId] | None = None,
    knowledge_files: Sequence[DocumentId] | None = None,
) -> Any:
    created = await off_loop(
        svc.conversations.create,
        user,
        title=body.title,
        model=body.model,
        system_prompt=body.system_prompt,
        remove_builtin_prompt=body.remove_builtin_prompt,
        settings=body.settings.model_dump(),
        messages=messages,
        knowledge=body.knowledge if knowledge is None else knowledge,
        knowledge_files=body.knowledge_files if knowledge_files is None else knowledge_files,
    )
    return ConversationFull.of(created).model_dump(mode="json")


@router.get("/conversations/{conversation_id}")
async def get_conversation(conversation_id: ConversationId, svc: ServicesDep, user: UserDep) -> Any:
    found = await off_loop(svc.conversations.get, user, conversation_id)
    return ConversationFull.of(found).model_dump(mode="json")


@router.patch("/conversations/{conversation_id}", openapi_extra=json_doc(ConversationPatch))
async def update_conversation(
    conversation_id: ConversationId, request: Request, svc: ServicesDep, user: UserDep
) -> Any:
    body = await json_body(request, ConversationPatch)
    if body.knowledge:
        await off_loop(svc.knowledge.bases.readable, user, body.knowledge)
    if body.knowledge_files:
        await off_loop(svc.knowledge.bases.documents_by_id, user, body.knowledge_files)
    updated = await off_loop(svc.conversations.update, user, conversation_id, **body.changes())
    return ConversationFull.of(updated).model_dump(mode="json")


@router.delete("/conversations/{conversation_id}", status_code=204)
async def delete_conversation(
    conversation_id: ConversationId, svc: ServicesDep, user: UserDep
) -> Response:
    await off_loop(svc.conversations.delete, user, conversation_id)
    return Response(status_code=204)


@router.get("/conversations/{conversation_id}/export")
async def export_conversation(
    conversation_id: ConversationId,
    svc: ServicesDep,
    user: UserDep,
    format: Literal["json", "markdown"] = "json",
    lang: Annotated[str, Query(max_length=35)] = "en",
) -> Response:
    found = await off_loop(svc.conversations.get, user, conversation_id)
    if format == "markdown":
        labels = await off_loop(server_strings, lang)
        content = to_markdown(found, labels).encode()
        media_type, extension = "text/markdown; charset=utf-8", "md"
    else:
        ids = [i.id for m in found.messages for i in m.images]
        images = await off_loop(svc.conversations.images, user, ids)
        document = ExportedConversation.of(found, images).model_dump(mode="json")
        content = json.dumps(document, ensure_ascii=False, indent=2).encode()
        media_type, extension = "application/json", "json"
    disposition = f'attachment; filename="{filename_for(found, extension)}"'
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})
