"""One model on a Ray Serve replica: the same supervised llama.cpp worker as on one machine.

The replica starts the worker exactly as the single-machine server does (LlamaCppEngine) and
relays llama.cpp's own HTTP to it, bytes untouched, behind the cluster's key: the gateway talks
to a replica through Serve's HTTP proxy with the same client it uses for a local worker.
Serve routes each request to a replica with a free slot (`max_ongoing_requests` = slots),
replaces a replica that dies or fails its health check, and scales within the model's bounds.
"""

from __future__ import annotations

import hmac
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import serve
from ray.serve import Deployment
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from iaforall.cluster.status import deployment_name
from iaforall.core.types import ModelId
from iaforall.engines.llamacpp.client import REPLICA_HEADER
from iaforall.engines.llamacpp.engine import LlamaCppEngine
from iaforall.engines.protocol import Capabilities, EngineState

# What a gateway may ask of a replica: llama.cpp's own endpoints that the engine client uses.
RELAYED = {
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/apply-template"),
    ("POST", "/tokenize"),
    ("GET", "/slots"),
}


@dataclass(frozen=True, slots=True)
class ReplicaSpec:
    """Everything a replica needs to load its model; sent by the gateway at deploy time."""

    model: str
    path: str  # the GGUF file, at the same path on every node (a shared or mirrored store)
    slots: int
    context_length: int
    tools: bool
    threads: int
    load_timeout: float
    read_timeout: float
    template_default_system: bool
    mmproj: str | None = None


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "server_error", "code": code}}, status
    )


class ModelReplica:
    """The Serve deployment's class (see `deployment`)."""

    def __init__(self, spec: ReplicaSpec) -> None:
        import ray

        self._key = ""
        path = Path(spec.path)
        node = ray.get_runtime_context().get_node_id()
        self.where = f"{node[:12]}/{os.getpid()}"
        if not path.is_file():
            raise FileNotFoundError(
                f"{spec.model}: no model file at {path} on node {node[:12]}. Every node needs "
                f"the store at the same path: a shared folder, or `iaforall pull {spec.model}` on "
                "each node."
            )
        logs = Path(tempfile.gettempdir()) / "iaforall-replicas"
        self._engine = LlamaCppEngine(
            ModelId(spec.model),
            path,
            Capabilities(slots=spec.slots, context_length=spec.context_length, tools=spec.tools),
            threads=spec.threads,  # explicit: Ray sets OMP_NUM_THREADS per replica
            log_file=logs / f"{spec.model.replace('/', '_')}-{os.getpid()}.log",
            load_timeout=spec.load_timeout,
            read_timeout=spec.read_timeout,
            template_default_system=spec.template_default_system,
            mmproj=Path(spec.mmproj) if spec.mmproj else None,
        )

    async def reconfigure(self, config: dict[str, Any]) -> None:
        """Serve calls this before the replica takes requests (the model loads here), and again
        when the gateway redeploys: `key` is what requests must carry, sent by the gateway
        through Ray's authenticated calls, never written anywhere."""
        self._key = str(config.get("key", ""))
        if self._engine.state is EngineState.STOPPED:
            await self._engine.start()

    async def check_health(self) -> None:
        """Serve replaces a replica whose worker died (a crash in llama.cpp)."""
        if self._engine.state is not EngineState.READY:
            raise RuntimeError(f"the worker of {self._engine.model} is {self._engine.state.value}")

    async def __call__(self, request: Request) -> Response:
        if self._key:
            given = request.headers.get("authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), self._key.encode()):
                return _error(401, "This replica only answers the gateway.", "unauthorized")
        path = request.url.path.removeprefix(request.scope.get("root_path", "")) or "/"
        if (request.method, path) not in RELAYED:
            return _error(404, f"No {request.method} {path} on a model replica.", "not_found")
        client = self._engine.client
        if self._engine.state is not EngineState.READY or client is None:
            return _error(503, f"The worker of {self._engine.model} is not running.", "down")
        relayed = await client.relay(request.method, path, await request.body())
        return StreamingResponse(
            relayed.body,
            status_code=relayed.status,
            media_type=relayed.content_type,
            headers={REPLICA_HEADER: self.where},
        )


def deployment(low: int, high: int, **options: Any) -> Deployment:
    """The Serve deployment of a model, with its replicas' options (see cluster/gateway.py).
    Its name carries the replica bounds, so that whoever reads the cluster knows the target."""
    name = deployment_name(low, high)
    return serve.deployment(name=name)(ModelReplica).options(**options)
