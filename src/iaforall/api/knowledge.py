"""/v1/knowledge_bases: knowledge bases, their files (read in the background), search, and
read-only sharing. Thin over iaforall.knowledge; documented in docs/knowledge.md."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services
from iaforall.api.limits import MAX_KNOWLEDGE_FILES
from iaforall.api.openapi import FILE, json_doc, multipart_doc
from iaforall.api.uploads import receive_files
from iaforall.core.errors import InvalidRequest, NotFound, PayloadTooLarge
from iaforall.core.types import DocumentId, KnowledgeBaseId, Principal
from iaforall.knowledge.bases import BaseView, DocumentView
from iaforall.knowledge.errors import DocumentRefused, DocumentTooLarge
from iaforall.knowledge.formats import sniff
from iaforall.knowledge.index import Mode
from iaforall.services import Services

router = APIRouter(prefix="/v1/knowledge_bases", tags=["knowledge bases"])

ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
MEDIA_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/plain; charset=utf-8",  # shown as text: an uploaded page never runs here
    "markdown": "text/plain; charset=utf-8",
    "csv": "text/plain; charset=utf-8",
    "text": "text/plain; charset=utf-8",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BaseCreate(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    embedding_model: str | None = Field(None, max_length=200)


class BasePatch(_Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)


class SearchBody(_Strict):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(5, ge=1, le=50)
    mode: Mode = "hybrid"


def base_out(base: BaseView, me: Principal, names: dict[str, str] | None = None) -> dict[str, Any]:
    shared = list(base.shared_with) if base.owner == me.user else []
    return {
        "id": base.id,
        "object": "knowledge_base",
        "name": base.name,
        "description": base.description,
        "embedding_model": base.embedding_model,
        "owner": base.owner,
        "access": "owner" if base.owner == me.user else "read",
        "shared_with": shared,
        # The same people by name, for showing (an id whose account is gone stays an id).
        "shared_with_names": [(names or {}).get(u, u) for u in shared],
        "file_counts": {"total": base.documents},
        "chunks": base.chunks,
        "created_at": _stamp(base.created_at),
        "updated_at": _stamp(base.updated_at),
    }


def document_out(d: DocumentView, *, duplicate: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": d.id,
        "object": "knowledge_base.file",
        "knowledge_base_id": d.kb_id,
        "filename": d.name,
        "bytes": d.size,
        "sha256": d.sha256,
        "status": d.status,
        "progress": d.progress,
        "error": None if d.error is None else {"code": d.error_code, "message": d.error},
        "format": d.format,
        "pages": d.pages,
        "ocr_pages": d.ocr_pages,
        "chunks": d.chunks,
        "created_at": _stamp(d.created_at),
        "updated_at": _stamp(d.updated_at),
    }
    if duplicate:
        out["duplicate"] = True  # the same bytes were already there: nothing was read again
    return out


def _stamp(moment: datetime) -> int:
    return int(moment.timestamp())


async def _off(work: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(work, *args, **kwargs)


def _names(svc: Services, bases: list[BaseView], me: Principal) -> dict[str, str]:
    """The names of the people the user's own bases are shared with."""
    names = {}
    for user_id in {u for b in bases if b.owner == me.user for u in b.shared_with}:
        with contextlib.suppress(NotFound):
            names[user_id] = svc.accounts.get_user(user_id).name
    return names


async def _out(svc: Services, base: BaseView, me: Principal) -> dict[str, Any]:
    return base_out(base, me, await _off(_names, svc, [base], me))


@router.get("")
async def list_bases(svc: ServicesDep, me: PrincipalDep) -> dict[str, Any]:
    found = await _off(svc.knowledge.bases.all_for, me.user)
    names = await _off(_names, svc, found, me)
    return {"object": "list", "data": [base_out(b, me, names) for b in found]}


@router.post("", status_code=201, openapi_extra=json_doc(BaseCreate))
async def create_base(request: Request, svc: ServicesDep, me: PrincipalDep) -> dict[str, Any]:
    body = await json_body(request, BaseCreate)
    model = svc.embeddings.resolve(body.embedding_model)  # unknown: 404 before anything exists
    created = await _off(
        svc.knowledge.bases.create, me.user, body.name.strip(), body.description, model.name
    )
    return base_out(created, me)


@router.get("/{kb_id}")
async def get_base(kb_id: KnowledgeBaseId, svc: ServicesDep, me: PrincipalDep) -> dict[str, Any]:
    return await _out(svc, await _off(svc.knowledge.bases.get, me.user, kb_id), me)


@router.patch("/{kb_id}", openapi_extra=json_doc(BasePatch))
async def update_base(
    kb_id: KnowledgeBaseId, request: Request, svc: ServicesDep, me: PrincipalDep
) -> dict[str, Any]:
    body = await json_body(request, BasePatch)
    changes = body.model_dump(exclude_none=True)
    return base_out(await _off(svc.knowledge.bases.update, me.user, kb_id, **changes), me)


@router.delete("/{kb_id}", status_code=204)
async def delete_base(kb_id: KnowledgeBaseId, svc: ServicesDep, me: PrincipalDep) -> Response:
    knowledge = svc.knowledge
    await _off(knowledge.bases.delete, me.user, kb_id)
    await _off(knowledge.index.remove, kb_id)
    return Response(status_code=204)


@router.put("/{kb_id}/shares/{name}")
async def share(
    kb_id: KnowledgeBaseId, name: str, svc: ServicesDep, me: PrincipalDep
) -> dict[str, Any]:
    """Let the person called `name` read this base (accounts must be on)."""
    if not svc.settings.people.auth:
        raise InvalidRequest(
            "Sharing needs accounts (IAFORALL_AUTH=true): without them there is only one user."
        )
    other = await _off(svc.accounts.get_user, name)
    return await _out(svc, await _off(svc.knowledge.bases.share, me.user, kb_id, other.id), me)


@router.delete("/{kb_id}/shares/{name}")
async def unshare(
    kb_id: KnowledgeBaseId, name: str, svc: ServicesDep, me: PrincipalDep
) -> dict[str, Any]:
    other = await _off(svc.accounts.get_user, name)
    return await _out(svc, await _off(svc.knowledge.bases.unshare, me.user, kb_id, other.id), me)


UPLOAD = multipart_doc(
    {"file": {"type": "array", "items": FILE, "maxItems": MAX_KNOWLEDGE_FILES}},
    required=["file"],
    description="One or more documents, each in a 'file' field.",
)


@router.post("/{kb_id}/files", status_code=202, openapi_extra=UPLOAD)
async def upload(
    kb_id: KnowledgeBaseId, request: Request, svc: ServicesDep, me: PrincipalDep
) -> Any:
    """Files are checked (size, real type against the name) before anything is stored, then
    read in the background: follow `status` and `progress`. A file already in the base (same
    bytes) is not read again."""
    knowledge = svc.knowledge
    # 404 or 403 before reading a body for nothing
    await _off(knowledge.bases.get, me.user, kb_id, write=True)
    storage = svc.storage
    await _off(storage.check, me, 1)  # a full storage quota: 413 before reading the body
    limit = svc.settings.knowledge.document_max_mb * 1_000_000

    def too_large() -> PayloadTooLarge:
        return DocumentTooLarge(
            f"A file is larger than the {limit // 1_000_000} MB allowed "
            "(IAFORALL_DOCUMENT_MAX_MB).",
            code="file_too_large",
        )

    _, files = await receive_files(
        request,
        max_bytes=limit,
        max_files=MAX_KNOWLEDGE_FILES,
        too_large=too_large,
        into=knowledge.bases.files_dir / "incoming",
    )
    try:
        for item in files:
            if item.size == 0:
                raise DocumentRefused(f"'{item.name}' is empty.", code="empty_document")
            await _off(sniff, item.path, item.name)
        known = [
            await _off(knowledge.bases.same_file, me.user, kb_id, item.sha256) for item in files
        ]
        # Only new bytes count: a file already in the base is not stored twice.
        fresh = sum(f.size for f, k in zip(files, known, strict=True) if k is None)
        results = []
        async with storage.reserve(me, fresh):
            for item, same in zip(files, known, strict=True):
                if same is not None:
                    results.append(document_out(same, duplicate=True))
                    continue
                document = await _off(
                    knowledge.bases.add_document,
                    me.user,
                    kb_id,
                    name=item.name or "document",
                    size=item.size,
                    sha256=item.sha256,
                    file=item.path,
                )
                knowledge.ingestion.submit(document)
                results.append(document_out(document))
    finally:
        for item in files:
            item.path.unlink(missing_ok=True)
    return {"object": "list", "data": results}


@router.get("/{kb_id}/files")
async def list_files(kb_id: KnowledgeBaseId, svc: ServicesDep, me: PrincipalDep) -> dict[str, Any]:
    found = await _off(svc.knowledge.bases.documents, me.user, kb_id)
    return {"object": "list", "data": [document_out(d) for d in found]}


@router.get("/{kb_id}/files/{file_id}")
async def get_file(
    kb_id: KnowledgeBaseId, file_id: DocumentId, svc: ServicesDep, me: PrincipalDep
) -> Any:
    return document_out(await _off(svc.knowledge.bases.document, me.user, kb_id, file_id))


@router.get("/{kb_id}/files/{file_id}/content")
async def file_content(
    kb_id: KnowledgeBaseId, file_id: DocumentId, svc: ServicesDep, me: PrincipalDep
) -> Response:
    """The file as uploaded (a PDF opens at a cited page with `#page=N`)."""
    bases = svc.knowledge.bases
    document = await _off(bases.document, me.user, kb_id, file_id)
    path = bases.path_of(kb_id, file_id)
    if not path.exists():
        raise NotFound(f"The file of '{document.name}' is missing from the server's disk.")
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(document.format or "", "application/octet-stream"),
        filename=document.name,
        content_disposition_type="inline",
        headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"},
    )


@router.delete("/{kb_id}/files/{file_id}", status_code=204)
async def delete_file(
    kb_id: KnowledgeBaseId, file_id: DocumentId, svc: ServicesDep, me: PrincipalDep
) -> Response:
    knowledge = svc.knowledge
    chunks = await _off(knowledge.bases.chunk_ids, file_id)
    await _off(knowledge.bases.delete_document, me.user, kb_id, file_id)
    if chunks:
        await _off(knowledge.index.remove, kb_id, chunks)
    return Response(status_code=204)


@router.post("/{kb_id}/search", openapi_extra=json_doc(SearchBody))
async def search(
    kb_id: KnowledgeBaseId, request: Request, svc: ServicesDep, me: PrincipalDep
) -> dict[str, Any]:
    body = await json_body(request, SearchBody)
    found = await svc.knowledge.retriever.search(
        me.user, [kb_id], body.query, k=body.k, mode=body.mode
    )
    return {"object": "list", "data": [c.to_json() for c in found]}
