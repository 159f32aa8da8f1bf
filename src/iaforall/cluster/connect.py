"""Joining a Ray cluster from this process, with Ray's settings made explicit.

Ray 2.60 turns token authentication on by itself when it finds `~/.ray/auth_token`, and sends
usage statistics unless told not to: both are decided here, in every process we start or join
from, never left to Ray's defaults (see docs/cluster.md).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal

from iaforall.core.errors import EngineUnavailable
from iaforall.settings import export_to_libraries

NAMESPACE = "iaforall"

log = logging.getLogger(__name__)


class ClusterError(EngineUnavailable):
    """The cluster cannot be reached or cannot run the model: a clean 503."""

    code = "cluster_unavailable"


def ray_environment(auth: Literal["token", "disabled"], token_file: Path | None) -> dict[str, str]:
    """The variables every Ray process of ours gets: authentication and no telemetry."""
    env = {"RAY_AUTH_MODE": auth, "RAY_USAGE_STATS_ENABLED": "0"}
    if auth == "token" and token_file is not None:
        env["RAY_AUTH_TOKEN_PATH"] = str(token_file)
    return env


def connect(
    address: str,
    *,
    auth: Literal["token", "disabled"],
    token_file: Path | None,
    attempts: int = 3,
) -> None:
    """Join the cluster at `address` (ray://HOST:PORT) as a client; raises ClusterError."""
    if auth == "token" and (token_file is None or not token_file.is_file()):
        raise ClusterError(
            f"Ray's token authentication is on but there is no token file at {token_file}. "
            "Copy the head's `cluster/auth_token` there (mode 0600), or set "
            "IAFORALL_CLUSTER_TOKEN_FILE."
        )
    export_to_libraries(ray_environment(auth, token_file))
    try:
        import ray
    except ImportError:
        raise ClusterError(
            "Ray is not installed: pip install 'ray[serve]>=2.50' (on every node too)."
        ) from None
    if ray.is_initialized():
        return
    for attempt in range(1, attempts + 1):
        try:
            ray.init(
                address=address,
                namespace=NAMESPACE,
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
            break
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, gRPC errors...
            # Ray Client's proxy picks a port per client (23000-24000) by looking, then
            # binding: two clusters on one machine can race for it. Another try fixes that.
            if attempt == attempts:
                raise ClusterError(f"Could not join the Ray cluster at {address}: {exc}") from None
            log.warning("joining %s failed (%s); trying again", address, exc)
            time.sleep(2.0)
    log.info("joined the Ray cluster at %s (authentication: %s)", address, auth)


def disconnect() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
