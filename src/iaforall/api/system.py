"""/health and /metrics."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from iaforall.api.deps import services
from iaforall.services import Services

router = APIRouter(tags=["system"])

ServicesDep = Annotated[Services, Depends(services)]


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


@router.get("/health")
async def health(svc: ServicesDep) -> dict[str, Any]:
    cluster = svc.cluster.health() if svc.cluster else None
    return {
        # degraded: the cluster is missing replicas or nodes, or cannot be reached
        "status": cluster["status"] if cluster else "ok",
        "default_model": svc.settings.server.model,
        "uptime_seconds": round(time.time() - svc.started_at, 1),
        "queue_length": svc.scheduler.queue_length,
        "models": await resident_models(svc),
        "memory_budget": {"bytes": svc.pool.memory_budget, "used": svc.pool.memory_used()},
        **({"cluster": cluster} if cluster else {}),
    }


@router.get("/metrics")
async def metrics(svc: ServicesDep) -> Response:
    svc.dispatcher.refresh_gauges()
    return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
