"""The gateway's pure decisions about the cluster: capacity, health, names, Ray's settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from iaforall.cluster.connect import ClusterError, connect, ray_environment
from iaforall.cluster.gateway import capacity, route_of, serving_key
from iaforall.cluster.status import app_name, model_of, summarize
from iaforall.settings import ClusterSettings


def test_capacity_follows_running_replicas_and_leaves_room_to_grow() -> None:
    assert capacity(running=2, low=2, high=2, slots=2) == 4  # fixed: exactly the slots
    assert capacity(running=1, low=2, high=2, slots=2) == 2  # one lost: the rest wait fairly
    assert capacity(running=0, low=2, high=2, slots=2) == 4  # nothing seen yet: deploy it
    assert capacity(running=1, low=1, high=4, slots=2) == 4  # may grow: one replica's worth
    assert capacity(running=4, low=1, high=4, slots=2) == 8  # at the most: no more


def test_bounds_per_model_and_by_default() -> None:
    settings = ClusterSettings(
        cluster_replicas=2, cluster_max_replicas=1, cluster_autoscaling={"big": (1, 4)}
    )
    assert settings.bounds("small") == (2, 2)  # a maximum below the least is the least
    assert settings.bounds("big") == (1, 4)


def test_routes_and_app_names_are_unique_and_url_safe() -> None:
    route = route_of("hf.co/owner/Repo:Q4_K_M")
    assert route.startswith("/iaforall/hf.co-owner-Repo-Q4_K_M-")
    assert route != route_of("hf.co/owner/Repo:Q4-K-M")
    for name in ("smollm2:135m", "a#b/c"):
        assert model_of(app_name(name)) == name and "#" not in app_name(name)


def test_serving_key_is_derived_from_the_token_and_never_is_it() -> None:
    assert serving_key(b"secret") == serving_key(b"secret") != serving_key(b"other")
    assert "secret" not in serving_key(b"secret")
    assert serving_key(b"") == ""


def test_ray_settings_are_always_explicit(tmp_path: Path) -> None:
    token = tmp_path / "auth_token"
    assert ray_environment("token", token) == {
        "RAY_AUTH_MODE": "token",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_TOKEN_PATH": str(token),
    }
    assert ray_environment("disabled", None) == {
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def test_joining_without_the_token_file_says_what_to_copy(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="cluster/auth_token"):
        connect("ray://127.0.0.1:1", auth="token", token_file=tmp_path / "missing")


@dataclass
class Deployment:
    replica_states: dict[str, int]
    message: str = ""


@dataclass
class App:
    status: str
    deployments: dict[str, Deployment] = field(default_factory=dict)


def node(alive: bool = True) -> dict[str, Any]:
    return {
        "NodeID": "n" * 56,
        "NodeManagerAddress": "10.0.0.2",
        "Alive": alive,
        "Resources": {"CPU": 2.0, "memory": 8e9},
    }


def test_health_is_degraded_when_replicas_or_nodes_are_missing() -> None:
    def bounds(model: str) -> tuple[int, int]:
        return (2, 2)

    running = {"iaforall-m": App("RUNNING", {"engine": Deployment({"RUNNING": 2})})}
    report = summarize([node(), node()], running, bounds)
    assert not report.degraded and report.running("m") == 2
    assert report.as_dict()["models"][0]["replicas"] == {"target": 2, "running": 2}

    one_lost = {
        "iaforall-m": App(
            "RUNNING", {"engine": Deployment({"RUNNING": 1, "STARTING": 1}, "replacing")}
        )
    }
    report = summarize([node(), node()], one_lost, bounds)
    assert report.degraded and report.models[0].replica_states == {"RUNNING": 1, "STARTING": 1}
    assert report.as_dict()["status"] == "degraded"

    assert summarize([node(), node(alive=False)], running, bounds).degraded
    failed = {"iaforall-m": App("DEPLOY_FAILED", {"engine": Deployment({}, "no file")})}
    assert summarize([node()], failed, bounds).models[0].message == "no file"


def test_the_target_is_read_from_the_deployment_itself() -> None:
    apps = {"iaforall-m": App("RUNNING", {"engine-replicas-3-5": Deployment({"RUNNING": 2})})}
    report = summarize([node()], apps, lambda model: (1, 1))  # the reader's settings differ
    assert report.models[0].target == 3 and report.degraded


def test_other_serve_applications_are_not_ours() -> None:
    apps = {"someone-else": App("UNHEALTHY", {"d": Deployment({"RUNNING": 0})})}
    report = summarize([node()], apps, lambda model: (1, 1))
    assert report.models == [] and not report.degraded
