"""A model whose replicas run on the cluster, behind the same small engine protocol.

The pool loads it (deploy the Serve application), uses it (the llama.cpp client, pointed at
Serve's HTTP proxy instead of a local worker) and unloads it (delete the application), exactly
as a local engine: the scheduler and the API do not know where it runs.
"""

from __future__ import annotations

from typing import Any

from iaforall.cluster.connect import ClusterError
from iaforall.cluster.gateway import ClusterGateway
from iaforall.cluster.status import app_name
from iaforall.core.types import GenerationRequest, ModelId
from iaforall.engines import budget
from iaforall.engines.llamacpp.client import ClientEngine, WorkerClient
from iaforall.engines.pool import EngineFactory, ModelEntry
from iaforall.engines.protocol import Capabilities, Engine, EngineState
from iaforall.models.projector import projector_for
from iaforall.models.system_prompt import uses_builtin_prompt
from iaforall.settings import EngineSettings


class ServeEngine(ClientEngine):
    def __init__(
        self,
        gateway: ClusterGateway,
        model: ModelId,
        capabilities: Capabilities,
        spec: Any,  # cluster.replica.ReplicaSpec, imported with Ray only where it runs
        *,
        replica_options: dict[str, Any],
        load_timeout: float,
    ) -> None:
        self.model = model
        self.capabilities = capabilities
        self._gateway = gateway
        self._spec = spec
        self._options = replica_options
        self._load_timeout = load_timeout
        self._state = EngineState.STOPPED
        self.client: WorkerClient | None = None

    def pausable(self, request: GenerationRequest) -> bool:
        """Never: a resume may land on another replica (no prompt cache there), and replicas
        do not relay llama.cpp's raw /completion."""
        return False

    @property
    def state(self) -> EngineState:
        report = self._gateway.report
        app = app_name(self.model)
        ready = self._state is EngineState.READY
        if ready and report is not None and not any(m.app == app for m in report.models):
            return EngineState.CRASHED  # deleted behind our back: deployed again on use
        return self._state

    async def start(self) -> None:
        self._state = EngineState.LOADING
        try:
            route = await self._gateway.deploy(
                self.model, self._spec, self._options, self._load_timeout
            )
        except ClusterError:
            self._state = EngineState.CRASHED
            raise
        if self.client is not None:
            await self.client.close()
        high = self._gateway.bounds(self.model)[1]
        self.client = WorkerClient(
            self.model,
            self._gateway.serve_url + route,
            self._gateway.key,
            connections=high * self.capabilities.slots + 4,
            read_timeout=self._spec.read_timeout,
            template_default_system=self._spec.template_default_system,
            where="replica",
        )
        self._state = EngineState.READY

    def _ready(self) -> WorkerClient:
        if self._state is not EngineState.READY or self.client is None:
            raise ClusterError(
                f"The model '{self.model}' is not running on the cluster "
                f"(state: {self._state.value}). Try again."
            )
        return self.client

    async def stats(self) -> dict[str, Any]:
        report = self._gateway.report
        found = next((m for m in report.models if m.model == self.model), None) if report else None
        return {
            "pid": None,
            "rss_bytes": None,  # on other machines: see `iaforall cluster status`
            "busy_slots": None,
            "replicas": None
            if found is None
            else {"target": found.target, "running": found.running},
            "served_by": dict(self.client.served_by) if self.client else {},
        }

    async def close(self) -> None:
        self._state = EngineState.STOPPED
        if self.client is not None:
            await self.client.close()
            self.client = None
        await self._gateway.delete(self.model)


def serve_factory(
    gateway: ClusterGateway, settings: EngineSettings, *, read_timeout: float
) -> EngineFactory:
    """Builds the cluster engine of a stored model (the pool's EngineFactory)."""
    own = settings.resolved_threads()

    def build(entry: ModelEntry, capabilities: Capabilities, threads: int = 0) -> Engine:
        # A replica's threads are its own (`threads` unused): no local budget on a cluster.
        from iaforall.cluster.replica import ReplicaSpec

        projector = projector_for(entry.path)
        spec = ReplicaSpec(
            model=entry.name,
            path=str(entry.path),
            slots=capabilities.slots,
            context_length=capabilities.context_length,
            tools=capabilities.tools,
            threads=own,
            load_timeout=settings.load_timeout,
            read_timeout=read_timeout,
            template_default_system=uses_builtin_prompt(
                settings.template_default_system, entry.sha256
            ),
            mmproj=str(projector) if projector else None,
        )
        memory = budget.estimate(
            entry.path, entry.size, capabilities.context_length * capabilities.slots
        )
        options = {
            "max_ongoing_requests": capabilities.slots,
            # Ray places a replica only on a node with these free: the worker's threads,
            # and the model's memory (file, KV cache, buffers).
            "ray_actor_options": {"num_cpus": own, "memory": memory},
            "health_check_period_s": 2,
            "health_check_timeout_s": 10,
            "graceful_shutdown_timeout_s": 5,
        }
        return ServeEngine(
            gateway,
            ModelId(entry.name),
            capabilities,
            spec,
            replica_options=options,
            load_timeout=settings.load_timeout,
        )

    return build
