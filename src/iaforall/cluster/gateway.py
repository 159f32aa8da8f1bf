"""The gateway's side of a Ray cluster: join it, deploy each model, watch the replicas.

The gateway keeps everything that decides (API, people, fair scheduling, rules, the model
store); the cluster only runs engines. Every call into Ray goes through one thread, because
Ray Client calls block; the latest view of the replicas (`report`) is refreshed every
`cluster_status_interval` seconds and feeds both the scheduler's capacity and /health.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from iaforall.cluster.connect import ClusterError, connect, disconnect
from iaforall.cluster.status import ClusterReport, app_name, read_status
from iaforall.core.types import ModelId
from iaforall.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


def route_of(model: str) -> str:
    """The model's path on Serve's HTTP proxy: readable, and unique per model name."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-")
    return f"/iaforall/{slug}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def serving_key(token: bytes) -> str:
    """What the replicas ask of requests: derived from Ray's token, so every gateway of the
    cluster agrees on it and nothing more is to be kept secret."""
    return hashlib.sha256(b"iaforall-serve:" + token).hexdigest() if token else ""


def capacity(running: int, low: int, high: int, slots: int) -> int:
    """Requests the gateway lets through to a model at once.

    As many as the running replicas have slots: the rest wait in the gateway's fair queue,
    not in Serve's first-come queue. While the model may still grow (autoscaling), one more
    replica's worth goes through: requests waiting in Serve are what makes it scale up. Before
    any replica is seen, the least number is assumed, so that the first request deploys it.
    """
    replicas = running or low
    if low < replicas + 1 <= high:  # autoscaling, not yet at its most
        replicas += 1
    return replicas * slots


class ClusterGateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings.cluster
        self.address = self.settings.cluster
        self._home = settings.store.home
        self._slots = settings.engine.parallel
        host = urlsplit(self.address.replace("ray://", "http://", 1)).hostname or "127.0.0.1"
        self.serve_url = (
            self.settings.cluster_serve_url or f"http://{host}:{self.settings.cluster_serve_port}"
        ).rstrip("/")
        self.key = ""
        self.report: ClusterReport | None = None
        self.error: str | None = None  # why the last look at the cluster failed
        self.checked_at = 0.0
        # One thread for every Ray call: Ray Client blocks, and is not made to be raced.
        self._ray = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ray")

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._ray, fn, *args)

    def bounds(self, model: str) -> tuple[int, int]:
        return self.settings.bounds(model)

    def slots_for(self, model: ModelId) -> int:
        low, high = self.bounds(model)
        running = self.report.running(model) if self.report else 0
        return capacity(running, low, high, self._slots)

    async def start(self) -> None:
        """Join the cluster and make sure Serve and its HTTP proxy run; raises ClusterError."""
        token_file = self.settings.token_path(self._home)
        auth = self.settings.cluster_auth
        await self._call(lambda: connect(self.address, auth=auth, token_file=token_file))
        if auth == "token":
            self.key = serving_key(token_file.read_bytes().strip())
        else:
            log.warning(
                "Ray's authentication is off: anyone who reaches the cluster's ports can run "
                "code on it. Keep it on (IAFORALL_CLUSTER_AUTH=token) outside a test bench."
            )
        await self._call(self._start_serve)
        await self._call(self._check_proxy)
        await self.refresh()

    def _start_serve(self) -> None:
        from ray import serve

        serve.start(
            http_options={
                "host": self.settings.cluster_serve_host,
                "port": self.settings.cluster_serve_port,
                "location": "HeadOnly",
            }
        )

    def _check_proxy(self, wait: float = 30.0) -> None:
        deadline = time.monotonic() + wait
        while True:
            try:
                with urllib.request.urlopen(f"{self.serve_url}/-/healthz", timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # it answers (a fresh proxy says 503 until it has routes)
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"Ray Serve's HTTP proxy does not answer at {self.serve_url} ({exc}). "
                        "Check IAFORALL_CLUSTER_SERVE_HOST/PORT/URL; if Serve was started "
                        "before with other HTTP options, `serve shutdown` it once."
                    ) from None
            time.sleep(0.5)

    async def refresh(self) -> ClusterReport | None:
        try:
            self.report = await self._call(read_status, self.bounds)
            self.error = None
        except Exception as exc:  # unreachable head, Serve gone...: reported, retried
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("the cluster's status could not be read: %s", self.error)
        self.checked_at = time.time()
        return self.report

    async def watch_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cluster_status_interval)
            await self.refresh()

    async def deploy(self, model: str, spec: Any, options: dict[str, Any], wait: float) -> str:
        """Deploy (or update) the model's application; returns its route once it runs."""
        route = route_of(model)
        app = app_name(model)
        low, high = self.bounds(model)
        options = {**options, "user_config": {"key": self.key}}
        if high > low:
            options["autoscaling_config"] = {
                "min_replicas": low,
                "max_replicas": high,
                "target_ongoing_requests": self._slots,
            }
        else:
            options["num_replicas"] = low
        if self.settings.cluster_replicas_per_node:
            options["max_replicas_per_node"] = self.settings.cluster_replicas_per_node

        def run() -> None:  # returns once the app runs; raises if it cannot start
            from ray import serve

            from iaforall.cluster.replica import deployment

            serve.run(deployment(low, high, **options).bind(spec), name=app, route_prefix=route)

        log.info("deploying %s on the cluster (%d to %d replicas)", model, low, high)
        # Its own thread, not the Ray one: `serve.run` waits for the replicas, and /health
        # must go on reading the cluster meanwhile.
        started = asyncio.ensure_future(asyncio.to_thread(run))
        try:
            await asyncio.wait_for(asyncio.shield(started), wait)
        except TimeoutError:
            await self.delete(model)  # which also ends the waiting `serve.run`
            found = (
                next((m for m in self.report.models if m.app == app), None) if self.report else None
            )
            raise ClusterError(
                f"{model} did not start on the cluster within {wait:.0f} s "
                f"({found.message if found and found.message else 'not placed yet'}). Are "
                "there nodes with the CPUs and memory it asks for?"
            ) from None
        except Exception as exc:  # DEPLOY_FAILED: the replica's own error is in the message
            await self.delete(model)
            raise ClusterError(f"The cluster could not start {model}: {exc}") from None
        await self.refresh()
        log.info("%s runs on the cluster at %s%s", model, self.serve_url, route)
        return route

    async def delete(self, model: str) -> None:
        def delete() -> None:
            from ray import serve

            serve.delete(app_name(model), _blocking=False)

        with contextlib.suppress(Exception):  # the cluster gone: nothing left to delete
            await self._call(delete)

    def health(self) -> dict[str, Any]:
        report = self.report.as_dict() if self.report else {"nodes": [], "models": []}
        degraded = self.error is not None or self.report is None or self.report.degraded
        return {
            **report,
            "status": "degraded" if degraded else "ok",
            "address": self.address,
            "serve_url": self.serve_url,
            "error": self.error,
            "checked_at": self.checked_at,
        }

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._call(disconnect)
        self._ray.shutdown(wait=False)
