"""`iaforall cluster up | status | down`: the pure parts, then a real two-node Ray cluster."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from iaforall.cli.main import _parser, apply_flags
from iaforall.cluster.local import (
    NODE_MARK,
    NODE_PORTS,
    ClusterState,
    LocalCluster,
    LocalClusterError,
    NodeRecord,
    UpOptions,
    check_reachable,
    ensure_token,
    free_port,
    node_command,
    node_environment,
    port_is_free,
    processes_of,
    ray_executable,
    read_state,
    split_address,
    state_path,
    stop_nodes,
    temp_root,
)
from iaforall.settings import Settings

RAY = Path(sys.executable).parent / "ray"

# --- pure parts -----------------------------------------------------------------------------


def test_a_free_port_is_free_until_taken() -> None:
    port = free_port()
    assert port_is_free(port)
    with socket.socket() as sock:
        sock.bind(("", port))
        sock.listen()
        assert not port_is_free(port)


def test_head_command_fixes_every_port_and_stays_small() -> None:
    ports = {name: 40000 + i for i, name in enumerate(NODE_PORTS)} | {"dashboard-port": 41000}
    options = UpOptions(num_cpus=2, object_store_mb=256)
    command = node_command(
        RAY,
        head=True,
        options=options,
        gcs_address="127.0.0.1:46379",
        temp_dir=Path("/tmp/x/head"),
        ports=ports,
    )
    assert command[:3] == [str(RAY), "start", "--block"]
    line = " ".join(command)
    assert "--head --port 46379" in line and "--include-dashboard false" in line
    assert "--object-store-memory 268435456" in line and "--num-cpus 2" in line
    assert "--disable-usage-stats" in line and "--temp-dir /tmp/x/head" in line
    for name, port in ports.items():
        assert f"--{name} {port}" in line
    assert "--address" not in command


def test_worker_command_joins_the_head() -> None:
    command = node_command(
        RAY,
        head=False,
        options=UpOptions(host="10.0.0.2"),
        gcs_address="10.0.0.1:6379",
        temp_dir=Path("/tmp/x/node2"),
        ports={},
    )
    line = " ".join(command)
    assert "--address 10.0.0.1:6379" in line and "--node-ip-address 10.0.0.2" in line
    assert "--head" not in command and "--ray-client-server-port" not in line
    assert f"--num-cpus {os.cpu_count()}" in line


def test_environment_sets_auth_and_no_telemetry(tmp_path: Path) -> None:
    env = node_environment("token", tmp_path / "token", Path("/tmp/x/head"))
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert env["RAY_AUTH_TOKEN_PATH"] == str(tmp_path / "token")
    assert env[NODE_MARK] == "/tmp/x/head"
    off = node_environment("disabled", tmp_path / "token", Path("/tmp/x/head"))
    assert off["RAY_AUTH_MODE"] == "disabled" and "RAY_AUTH_TOKEN_PATH" not in off


def test_temp_root_is_short_and_one_per_home(tmp_path: Path) -> None:
    deep = tmp_path / ("a" * 80) / "home"
    assert len(str(temp_root(deep))) < 40  # room for Ray's session and socket names
    assert temp_root(deep) == temp_root(deep)
    assert temp_root(deep) != temp_root(tmp_path / "other")


def test_token_is_private_random_and_kept(tmp_path: Path) -> None:
    path = ensure_token(tmp_path / "cluster" / "auth_token")
    token = path.read_text()
    assert len(token) == 64 and int(token, 16) >= 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ensure_token(path)
    assert path.read_text() == token
    assert ensure_token(tmp_path / "other").read_text() != token


def test_state_file_round_trip_and_bad_files(tmp_path: Path) -> None:
    node = NodeRecord("head", True, 12, 12, "/tmp/x/head", "/h/head.log", {"dashboard-port": 1})
    state = ClusterState("127.0.0.1:6379", "ray://127.0.0.1:10001", "token", "/t", [node], 1.5)
    assert ClusterState.from_json(state.to_json()) == state
    assert read_state(tmp_path) is None
    state_path(tmp_path).parent.mkdir()
    state_path(tmp_path).write_text(state.to_json().replace('"token"', '"maybe"', 1))
    with pytest.raises(LocalClusterError, match="cannot be read"):
        read_state(tmp_path)


def test_addresses_are_checked_quickly() -> None:
    with pytest.raises(LocalClusterError, match="HOST:PORT"):
        split_address("localhost")
    began = time.monotonic()
    with pytest.raises(LocalClusterError, match="No Ray head answers"):
        check_reachable(f"127.0.0.1:{free_port()}")
    assert time.monotonic() - began < 3


def test_cluster_flags_do_not_leak_into_the_server_settings() -> None:
    args = _parser().parse_args(["cluster", "up", "--auth", "disabled", "--port", "7000"])
    settings = apply_flags(Settings(), args)
    assert settings.server.port == Settings().server.port
    assert settings.people.auth == Settings().people.auth
    assert (args.cluster_auth, args.gcs_port) == ("disabled", 7000)


def test_without_ray_it_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    with pytest.raises(LocalClusterError, match=re.escape("pip install 'ray[serve]>=2.50'")):
        ray_executable()


def test_a_stale_state_is_forgotten(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    root = temp_root(tmp_path)
    node = NodeRecord("head", True, dead.pid, dead.pid, str(root / "head"), "", {})
    state = ClusterState("127.0.0.1:1", "ray://127.0.0.1:2", "token", "/t", [node], 1.0)
    state_path(tmp_path).parent.mkdir()
    state_path(tmp_path).write_text(state.to_json())
    assert LocalCluster(tmp_path, tmp_path / "token").running() is None
    assert not state_path(tmp_path).exists()


def test_busy_ports_and_tiny_stores_are_refused_before_starting(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, tmp_path / "token")
    with pytest.raises(LocalClusterError, match="75 or more"):
        cluster.up(UpOptions(object_store_mb=10), print)
    with socket.socket() as sock:
        sock.bind(("", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        with pytest.raises(LocalClusterError, match=f"Port {busy} \\(--port\\) is already in use"):
            cluster.up(UpOptions(port=busy, client_port=0), print)
    assert read_state(tmp_path) is None and not temp_root(tmp_path).exists()


def _spawn(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sh", "-c", command], env=env, start_new_session=True)


def test_stop_finds_descendants_and_spares_the_rest(tmp_path: Path) -> None:
    mine = str(tmp_path / "node")
    ours = _spawn("trap '' TERM; sleep 60 & sleep 60", {**os.environ, NODE_MARK: mine})
    other = _spawn("sleep 60", dict(os.environ))
    naming = _spawn(f"sleep 60; echo {mine}", dict(os.environ))  # names it, started elsewhere
    try:
        time.sleep(0.3)
        found = processes_of([mine])
        assert ours.pid in found and other.pid not in found
        assert naming.pid in found and len(found) == 4  # the shell, not its child
        record = NodeRecord("node", False, ours.pid, ours.pid, mine, "")
        [stopped] = stop_nodes([record], grace=1.0)
        assert stopped.killed and set(stopped.pids) == set(found)  # the shell ignored SIGTERM
        ours.wait(5)
        # reaped first: a killed process still shows in /proc until it has finished dying
        assert naming.wait(5) == -signal.SIGKILL
        # the orphaned `sleep` was killed too; init reaps it when it gets to it
        deadline = time.monotonic() + 5
        while processes_of([mine]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not processes_of([mine]) and other.poll() is None
    finally:
        for process in (ours, other, naming):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group: a child may outlive its shell
            process.wait()


# --- a real cluster -------------------------------------------------------------------------


def iaforall(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IAFORALL_CLUSTER")}
    env |= {"IAFORALL_HOME": str(home), "RAY_AUTH_MODE": "token", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "iaforall", "cluster", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _ours_in_proc(root: Path) -> list[int]:
    """Every process whose command line or environment names our temp dirs."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and str(root).encode() in text:
            pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def cluster_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not RAY.is_file():
        pytest.skip("Ray is not installed (pip install 'ray[serve]>=2.50')")
    home = tmp_path_factory.mktemp("cluster-home")
    yield home
    iaforall("down", home=home)  # whatever a failed test left behind


@pytest.mark.timeout(120)
def test_up_status_refuse_down(cluster_home: Path) -> None:
    bystander = _spawn("sleep 120", dict(os.environ))
    try:
        began = time.monotonic()
        up = iaforall("up", "--nodes", "2", "--port", "0", "--client-port", "0", home=cluster_home)
        assert up.returncode == 0, up.stderr
        assert time.monotonic() - began < 60
        state = read_state(cluster_home)
        assert state is not None and [n.name for n in state.nodes] == ["head", "node2"]
        assert f"iaforall serve --cluster {state.client_address}" in up.stdout
        token = cluster_home / "cluster" / "auth_token"
        assert stat.S_IMODE(token.stat().st_mode) == 0o600

        status = iaforall("status", "--json", home=cluster_home)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["running"] and report["auth"] == "token"
        assert [n["alive"] for n in report["nodes"]] == [True, True]
        assert all(n["processes"] > 0 for n in report["local_nodes"])

        again = iaforall("up", home=cluster_home)
        assert again.returncode == 1 and "cluster down" in again.stderr
        assert "Traceback" not in again.stderr

        root = temp_root(cluster_home)
        assert _ours_in_proc(root)
        down = iaforall("down", home=cluster_home)
        assert down.returncode == 0, down.stderr
        assert "Stopped head" in down.stdout and "Stopped node2" in down.stdout
        assert _ours_in_proc(root) == []
        assert not state_path(cluster_home).exists() and not root.exists()
        assert bystander.poll() is None  # not ours: untouched
        assert "No local cluster was running" in iaforall("down", home=cluster_home).stdout
    finally:
        os.killpg(bystander.pid, signal.SIGKILL)
        bystander.wait()


def test_joining_a_head_that_is_not_there_fails_quickly(tmp_path: Path) -> None:
    no_token = iaforall("up", "--join", "127.0.0.1:6379", home=tmp_path, timeout=30)
    assert no_token.returncode == 1 and "copy the head's" in no_token.stderr
    ensure_token(tmp_path / "cluster" / "auth_token")
    began = time.monotonic()
    joined = iaforall("up", "--join", f"127.0.0.1:{free_port()}", home=tmp_path, timeout=30)
    assert joined.returncode == 1
    assert "No Ray head answers" in joined.stderr and "Traceback" not in joined.stderr
    assert time.monotonic() - began < 15
    assert not state_path(tmp_path).exists()
