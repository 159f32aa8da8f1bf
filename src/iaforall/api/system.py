"""/health and /metrics.

The liveness answer is public and says nothing about the machine; a member sees the models'
states (the web app's waiting status); the details (PIDs, memory, queue, cluster) are an
administrator's, and so are the metrics; a monitoring token (IAFORALL_METRICS_TOKEN) reads both.
Without accounts, "administrator" is whoever reaches the server on its loopback address.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from iaforall.api.auth import authenticate, presented_key, require_admin
from iaforall.api.deps import services
from iaforall.core.errors import IAForAllError
from iaforall.core.types import Principal, UserId
from iaforall.observability.doctor import doctor
from iaforall.people.secrets import same_digest
from iaforall.services import Services

router = APIRouter(tags=["system"])

ServicesDep = Annotated[Services, Depends(services)]
# Who the monitoring token speaks for: it reads, as an administrator would, and nothing else.
MONITOR = Principal(UserId("monitor"), "monitor", "admin")


async def resident_models(svc: Services) -> list[dict[str, Any]]:
    """What is loaded, for /health and `iaforall ps`."""
    now = time.monotonic()
    models: list[dict[str, Any]] = []
    await svc.pool.measure()
    for model, resident in svc.pool.residents().items():
        stats = await resident.engine.stats()
        expires = svc.pool.expires_at(resident)
        models.append(
            {
                "name": model,
                "state": resident.engine.state.value,
                "slots": resident.engine.capabilities.slots,
                "context_length": resident.engine.capabilities.context_length,
                "busy_slots": stats.get("busy_slots"),
                "running": svc.scheduler.running(model),
                "queued": svc.scheduler.queued(model),
                "threads": svc.scheduler.threads(model),
                "memory_bytes": stats.get("rss_bytes"),
                "budgeted_bytes": resident.counted,
                "keep_alive": svc.pool.keep_alive_of(resident),
                "pid": stats.get("pid"),
                "expires_in": None if expires is None else max(0.0, round(expires - now, 1)),
                # on a cluster: replicas wanted and running, and answers per replica
                **{key: stats[key] for key in ("replicas", "served_by") if key in stats},
            }
        )
    return models


def _monitor(request: Request, svc: Services) -> bool:
    """The bearer of the monitoring token (IAFORALL_METRICS_TOKEN): metrics and details."""
    token = svc.settings.server.metrics_token
    return bool(token) and same_digest(presented_key(request) or "", token or "")


async def _asker(request: Request, svc: Services) -> Principal | None:
    if _monitor(request, svc):
        return MONITOR
    try:
        return await authenticate(request)
    except IAForAllError:
        return None


@router.get("/health")
async def health(request: Request, svc: ServicesDep) -> dict[str, Any]:
    """Liveness for anyone; for a signed-in member, what the web app shows while it waits (the
    default model, each model's state and queue); for an administrator, everything."""
    cluster = svc.cluster.health() if svc.cluster else None
    # degraded: the cluster is missing replicas or nodes, or cannot be reached
    status = {"status": cluster["status"] if cluster else "ok"}
    asker = await _asker(request, svc)
    if asker is None:
        return status
    models = await resident_models(svc)
    if not asker.is_admin:
        shown = ("name", "state", "queued")
        return {
            **status,
            "default_model": svc.settings.server.model,
            "models": [{key: m[key] for key in shown} for m in models],
        }
    return {
        **status,
        "default_model": svc.settings.server.model,
        "uptime_seconds": round(time.time() - svc.started_at, 1),
        "queue_length": svc.scheduler.queue_length,
        "models": models,
        "memory_budget": {"bytes": svc.pool.memory_budget, "used": svc.pool.memory_used()},
        "cpu_budget": cpu_budget(svc),
        "runtimes": await _runtimes(svc),
        # `iaforall doctor`'s table: each capability, working or not, why, and the fix
        "capabilities": [row.as_dict() for row in await asyncio.to_thread(doctor, svc.settings)],
        **({"cluster": cluster} if cluster else {}),
    }


def cpu_budget(svc: Services) -> dict[str, Any]:
    """The CPU budget (IAFORALL_CPU_CORES) and what holds it now: each running model or
    runtime, its threads (its jobs share them) and its jobs."""
    use = svc.scheduler.cpu()
    return {
        "cores": use.cores,
        "in_use": use.in_use,
        # cores other programs keep busy (the budget leaves them those), when it follows them
        "others_busy": None if svc.machine is None else round(svc.machine.foreign, 2),
        # chat workers restarted with the threads the budget gave them, since the start
        "worker_restarts": svc.pool.restarts,
        "holders": [
            {"name": model, "threads": threads, "jobs": svc.scheduler.running(model)}
            for model, threads in sorted(use.held.items())
        ],
    }


async def _runtimes(svc: Services) -> list[dict[str, Any]]:
    """Whisper, the voices, OCR and the encoder made so far: what they do, their state, their
    jobs running and waiting, and what they say of themselves."""
    return [
        {
            "name": runtime.model,
            "kind": runtime.capabilities.kind,
            "threads": runtime.capabilities.threads,
            "state": runtime.state.value,
            "running": svc.scheduler.running(runtime.model),
            "queued": svc.scheduler.queued(runtime.model),
            **await runtime.stats(),
        }
        for runtime in svc.pool.runtimes.made()
    ]


@router.get("/metrics")
async def metrics(request: Request, svc: ServicesDep) -> Response:
    if not _monitor(request, svc):
        await require_admin(request)
    svc.dispatcher.refresh_gauges()
    return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
