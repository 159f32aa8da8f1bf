"""/admin/api/backup: an administrator downloads a backup of the server (streamed as it is
written, see backup/stream.py) and sees when the last one was made. Admins only."""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from iaforall.api.deps import require_admin, services
from iaforall.backup.files import last_backup, record_backup, timed_name
from iaforall.backup.stream import ClosingStreamingResponse, stream_backup
from iaforall.backup.write import take_snapshot
from iaforall.services import Services

router = APIRouter(prefix="/admin/api", tags=["admin"], dependencies=[Depends(require_admin)])

ServicesDep = Annotated[Services, Depends(services)]


TAR: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/x-tar": {}}, "description": "The backup archive."}
}


@router.get("/backup", response_class=Response, responses=TAR)
async def download_backup(svc: ServicesDep) -> Response:
    """The archive `iaforall backup` writes (tar): the database copied first (an error then is
    a clean JSON answer), then every file sent as it is read."""
    snapshot = await run_in_threadpool(take_snapshot, svc.settings)
    finished = partial(record_backup, svc.settings, how="download")
    return ClosingStreamingResponse(
        stream_backup(snapshot, finished),
        media_type="application/x-tar",
        headers={
            "Content-Disposition": f'attachment; filename="{timed_name()}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/backup/last")
async def last(svc: ServicesDep) -> dict[str, Any]:
    """When the last backup was made (by the command or a download), or null."""
    found = await run_in_threadpool(last_backup, svc.settings)
    return {"last": None if found is None else asdict(found)}
