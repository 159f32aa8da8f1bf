"""What the cluster looks like now: its nodes, and each model's replicas.

Read through Ray's public state (`ray.nodes()`, `serve.status()`) from a connected process; the
summary (`summarize`) is pure, so what counts as degraded is tested without a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

APP_PREFIX = "iaforall-"  # our Serve applications; others on the same cluster are left alone


@dataclass(frozen=True, slots=True)
class NodeReport:
    node_id: str
    ip: str
    alive: bool
    cpus: float
    memory_bytes: int


@dataclass(frozen=True, slots=True)
class ModelReport:
    model: str
    app: str
    status: str  # Serve's application status: RUNNING, DEPLOYING, UNHEALTHY...
    target: int  # the least replicas wanted
    running: int
    replica_states: dict[str, int] = field(default_factory=dict)
    message: str = ""

    @property
    def degraded(self) -> bool:
        return self.running < self.target or self.status not in ("RUNNING", "DEPLOYING")


@dataclass(frozen=True, slots=True)
class ClusterReport:
    nodes: list[NodeReport]
    models: list[ModelReport]

    @property
    def degraded(self) -> bool:
        return any(not n.alive for n in self.nodes) or any(m.degraded for m in self.models)

    def running(self, model: str) -> int:
        return next((m.running for m in self.models if m.model == model), 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "degraded" if self.degraded else "ok",
            "nodes": [
                {
                    "node_id": n.node_id,
                    "ip": n.ip,
                    "alive": n.alive,
                    "cpus": n.cpus,
                    "memory_bytes": n.memory_bytes,
                }
                for n in self.nodes
            ],
            "models": [
                {
                    "model": m.model,
                    "app": m.app,
                    "status": m.status,
                    "replicas": {"target": m.target, "running": m.running},
                    "replica_states": m.replica_states,
                    "message": m.message,
                    "degraded": m.degraded,
                }
                for m in self.models
            ],
        }


def summarize(
    nodes: list[dict[str, Any]],
    applications: Mapping[str, Any],
    bounds: Callable[[str], tuple[int, int]],
) -> ClusterReport:
    """Ray's raw node list and Serve's application overviews, as a report.

    `applications` maps an app name to an object with `.status` and `.deployments` (Serve's
    ApplicationStatusOverview); only our apps (APP_PREFIX) are reported.
    """
    node_reports = [
        NodeReport(
            node_id=str(n.get("NodeID", "")),
            ip=str(n.get("NodeManagerAddress", "")),
            alive=bool(n.get("Alive")),
            cpus=float(n.get("Resources", {}).get("CPU", 0.0)),
            memory_bytes=int(n.get("Resources", {}).get("memory", 0)),
        )
        for n in nodes
    ]
    models = []
    for app, overview in sorted(applications.items()):
        if not app.startswith(APP_PREFIX):
            continue
        model = model_of(app)
        states: dict[str, int] = {}
        messages = []
        low = bounds(model)[0]
        for name, deployment in overview.deployments.items():
            low = bounds_of(name, low)
            for state, count in deployment.replica_states.items():
                key = str(getattr(state, "value", state))
                states[key] = states.get(key, 0) + int(count)
            if deployment.message:
                messages.append(str(deployment.message))
        models.append(
            ModelReport(
                model=model,
                app=app,
                status=str(getattr(overview.status, "value", overview.status)),
                target=low,
                running=states.get("RUNNING", 0),
                replica_states=states,
                message=" ".join(messages),
            )
        )
    return ClusterReport(node_reports, models)


def deployment_name(low: int, high: int) -> str:
    return f"engine-replicas-{low}-{high}"


def bounds_of(deployment: str, default: int) -> int:
    """The least replicas a deployment was made with (its name says), else `default`."""
    found = re.fullmatch(r"engine-replicas-(\d+)-(\d+)", deployment)
    return int(found.group(1)) if found else default


def app_name(model: str) -> str:
    """The Serve application of a model (Serve names may hold any character but '#')."""
    return APP_PREFIX + model.replace("#", "%23")


def model_of(app: str) -> str:
    return app.removeprefix(APP_PREFIX).replace("%23", "#")


def read_status(bounds: Callable[[str], tuple[int, int]] | None = None) -> ClusterReport:
    """The cluster now, from a process already joined to it (blocking: call in a thread)."""
    import ray
    from ray import serve

    applications = serve.status().applications
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return summarize(nodes, applications, bounds or (lambda _model: (1, 1)))
