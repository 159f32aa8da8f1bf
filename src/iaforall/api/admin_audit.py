"""/admin/api/audit: the policy decisions' audit log, for administrators. Read and export only:
the log is append-only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from iaforall.api.deps import require_admin, services
from iaforall.services import Services
from iaforall.store.audit import AuditFilter, AuditLog, AuditView, export_csv, export_json

router = APIRouter(prefix="/admin/api/audit", tags=["admin"], dependencies=[Depends(require_admin)])

ServicesDep = Annotated[Services, Depends(services)]
Action = Literal["block", "warn", "log"]


def _filter(
    since: Annotated[datetime | None, Query(description="From this time (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time (ISO 8601).")] = None,
    user: Annotated[str | None, Query(max_length=64)] = None,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    action: Action | None = None,
) -> AuditFilter:
    return AuditFilter(_utc(since), _utc(until), user, rule, action)


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is read as UTC, as the log keeps it."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


FilterDep = Annotated[AuditFilter, Depends(_filter)]


@router.get("")
async def list_audit(
    svc: ServicesDep,
    where: FilterDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    # bounded: the database's integers are 64-bit (a larger one was a 500)
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Entries older than this id.")
    ] = None,
) -> dict[str, Any]:
    """Newest first; `next_before` is where the next page starts (null on the last page)."""
    entries = await run_in_threadpool(
        AuditLog(svc.database).list, where, limit=limit, before=before
    )
    more = len(entries) == limit
    return {
        "object": "list",
        "data": [e.as_json() for e in entries],
        "next_before": entries[-1].id if more and entries else None,
    }


@router.get("/export")
async def export_audit(
    svc: ServicesDep, where: FilterDep, format: Literal["csv", "json"] = "csv"
) -> StreamingResponse:
    """The whole log (or the filtered part), oldest first, streamed as it is read."""
    entries: Iterator[AuditView] = AuditLog(svc.database).iterate(where)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if format == "csv":
        body, media_type = export_csv(entries), "text/csv; charset=utf-8"
    else:
        body, media_type = export_json(entries), "application/json"
    disposition = f'attachment; filename="iaforall-audit-{stamp}.{format}"'
    return StreamingResponse(
        body, media_type=media_type, headers={"Content-Disposition": disposition}
    )
