"""A Ray cluster on this machine: `iaforall cluster up | down` start and stop its nodes.

Each node is one `ray start --block` process in its own session: it stays in the foreground,
supervises its node's processes (GCS, raylet, agents, workers) and stops them on SIGTERM. We
record every node in `cluster/state.json` in the home and stop only those: never `ray stop`,
which kills every Ray process on the machine, other people's included.

Every fixed port Ray would otherwise take by default (dashboard 8265, agent 52365...) is picked
free here, so two nodes, or two clusters, live side by side on one machine. Every node process
carries `IAFORALL_RAY_NODE=<its temp dir>` in its environment, inherited by all it starts
(workers included, which Ray starts in sessions of their own): that is how `down` finds what is
ours and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from iaforall.cluster.connect import ray_environment
from iaforall.core.errors import IAForAllError
from iaforall.settings import child_environment

Auth = Literal["token", "disabled"]
NODE_MARK = "IAFORALL_RAY_NODE"
READY_LINE = "Ray runtime started."
RAY_MISSING = "Ray is not installed here: pip install 'ray[serve]>=2.50'"
# Ports Ray gives fixed defaults to; one free port each, per node (the head adds the dashboard).
NODE_PORTS = (
    "node-manager-port",
    "object-manager-port",
    "metrics-export-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
)


class LocalClusterError(IAForAllError):
    """A local cluster that cannot start or be stopped, said for the person who asked."""

    code = "cluster_error"


@dataclass(frozen=True)
class UpOptions:
    nodes: int = 1
    host: str = "127.0.0.1"
    port: int = 6379  # 0: a free one
    client_port: int = 10001  # 0: a free one
    num_cpus: int | None = None  # per node; None: all cores
    object_store_mb: int = 256
    auth: Auth = "token"
    join: str | None = None  # HEAD_HOST:PORT: worker nodes of a head elsewhere
    timeout: float = 90.0  # seconds a node may take to start


@dataclass(frozen=True)
class NodeRecord:
    name: str
    head: bool
    pid: int
    pgid: int
    temp_dir: str
    log_file: str
    ports: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterState:
    head_address: str  # HOST:PORT of the GCS
    client_address: str  # ray://HOST:PORT, Ray Client's ("" when joined to a head elsewhere)
    auth: Auth
    token_file: str
    nodes: list[NodeRecord]
    started_at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        raw = json.loads(text)
        if raw.get("auth") not in ("token", "disabled"):
            raise ValueError(f"unknown auth mode {raw.get('auth')!r}")
        return cls(
            head_address=str(raw["head_address"]),
            client_address=str(raw["client_address"]),
            auth=raw["auth"],
            token_file=str(raw["token_file"]),
            nodes=[NodeRecord(**node) for node in raw["nodes"]],
            started_at=float(raw["started_at"]),
        )


@dataclass(frozen=True)
class Stopped:
    name: str
    pids: list[int]  # every process of this node we saw and stopped
    killed: bool  # some needed SIGKILL


# --- places ---------------------------------------------------------------------------------


def cluster_dir(home: Path) -> Path:
    return home / "cluster"


def state_path(home: Path) -> Path:
    return cluster_dir(home) / "state.json"


def temp_root(home: Path) -> Path:
    """Ray's temp dirs for this home: short, since Unix socket paths stop at ~107 characters."""
    digest = hashlib.sha256(str(home.expanduser().resolve()).encode()).hexdigest()[:10]
    return Path("/tmp") / f"iaforall-ray-{digest}"


def ray_executable() -> Path:
    """The `ray` next to this Python (the venv's), never another one on the PATH."""
    ray = Path(sys.executable).parent / "ray"
    if not ray.is_file():
        raise LocalClusterError(RAY_MISSING)
    return ray


def read_state(home: Path) -> ClusterState | None:
    path = state_path(home)
    try:
        return ClusterState.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise LocalClusterError(f"{path} cannot be read ({exc}); remove it by hand.") from None


def ensure_token(path: Path) -> Path:
    """Ray's token file, made (random, mode 0600) if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_hex(32))
    return path


# --- ports ----------------------------------------------------------------------------------


def free_port() -> int:
    """A port free on every interface now (Ray listens on all of them)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
        return True


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise LocalClusterError(f"{address!r} is not HOST:PORT (e.g. 192.168.1.10:6379).")
    return host, int(port)


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail fast, and clearly, when a head to join does not answer."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise LocalClusterError(
            f"No Ray head answers at {address} ({reason}). Is `iaforall cluster up` running "
            "there, and its port open to this machine?"
        ) from None


# --- command lines --------------------------------------------------------------------------


def node_command(
    ray: Path,
    *,
    head: bool,
    options: UpOptions,
    gcs_address: str,
    temp_dir: Path,
    ports: dict[str, int],
) -> list[str]:
    """The `ray start --block` command line of one node (pure)."""
    command = [str(ray), "start", "--block"]
    if head:
        _, gcs_port = split_address(gcs_address)
        command += ["--head", "--port", str(gcs_port), "--include-dashboard", "false"]
        command += ["--dashboard-host", "127.0.0.1"]
    else:
        command += ["--address", gcs_address]
    command += ["--node-ip-address", options.host]
    command += ["--num-cpus", str(options.num_cpus or os.cpu_count() or 1)]
    command += ["--object-store-memory", str(options.object_store_mb * 1024 * 1024)]
    command += ["--temp-dir", str(temp_dir), "--disable-usage-stats", "--log-style", "record"]
    for name, port in sorted(ports.items()):
        command += [f"--{name}", str(port)]
    return command


def node_environment(auth: Auth, token_file: Path, temp_dir: Path) -> dict[str, str]:
    env = child_environment({**ray_environment(auth, token_file), NODE_MARK: str(temp_dir)})
    # Ray starts its workers at nice 15; here the workers are the engines, the node's real work.
    env["RAY_worker_niceness"] = "0"
    if auth == "disabled":
        env.pop("RAY_AUTH_TOKEN_PATH", None)
    return env


# --- processes ------------------------------------------------------------------------------


def _stat(entry: Path) -> tuple[int, int] | None:
    """(ppid, pgid) of a live process; None when gone or a zombie."""
    try:
        stat = (entry / "stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return None if fields[0] in ("Z", "X") else (int(fields[1]), int(fields[2]))


def _alive(pid: int) -> bool:
    return _stat(Path(f"/proc/{pid}")) is not None  # zombies are gone too


def processes_of(temp_dirs: Iterable[str]) -> dict[int, str]:
    """Our processes, by pid: those started with one of our dirs as NODE_MARK, with their
    descendants and process-group members (Ray's agents overwrite their environment with their
    process title: only their parent or group tells they are ours), and any process whose
    command line names one of our dirs."""
    marks = [(f"{NODE_MARK}={d}\0".encode(), d.encode()) for d in temp_dirs]
    table: dict[int, tuple[int, int, str]] = {}
    found: set[int] = set()
    named: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        stat = _stat(entry)
        if stat is None:
            continue
        table[pid] = (*stat, cmdline.replace(b"\0", b" ").decode(errors="replace")[:80])
        if any(mark in environ for mark, _ in marks):
            found.add(pid)
        elif any(path in cmdline for _, path in marks):
            named.add(pid)  # names our dir, but was not started by us: itself only
    leaders = {pid for pid in found if table[pid][1] == pid}
    grown = True
    while grown:
        more = {
            pid
            for pid, (ppid, pgid, _) in table.items()
            if pid not in found and (ppid in found or pgid in leaders)
        }
        found |= more
        grown = bool(more)
    return {pid: table[pid][2].strip() for pid in sorted(found | named)}


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop_nodes(nodes: Sequence[NodeRecord], grace: float = 15.0) -> list[Stopped]:
    """Stop our nodes, and only ours: SIGTERM each `ray start` (it stops its node's processes in
    order), SIGTERM what outlives it, SIGKILL what is left after `grace` seconds."""
    seen = {node.name: processes_of([node.temp_dir]) for node in nodes}
    everything = {pid for pids in seen.values() for pid in pids}
    leaders = {node.pid for node in nodes if node.pid in seen[node.name]}
    for pid in leaders:
        _signal(pid, signal.SIGTERM)
    orphans_told = not leaders
    if orphans_told:
        for pid in everything:
            _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in everything):
        if not orphans_told and not any(_alive(pid) for pid in leaders):
            time.sleep(1.0)  # the leader is gone: give its children a moment, then tell them
            for pid in everything:
                _signal(pid, signal.SIGTERM)
            orphans_told = True
        time.sleep(0.2)
    killed: set[str] = set()
    for node in nodes:
        left = set(processes_of([node.temp_dir])) | {p for p in seen[node.name] if _alive(p)}
        if left:
            killed.add(node.name)
            if node.pid in leaders:
                _signal_group(node.pgid, signal.SIGKILL)
            for pid in left:
                _signal(pid, signal.SIGKILL)
            seen[node.name].update(dict.fromkeys(left, ""))
    return [Stopped(node.name, sorted(seen[node.name]), node.name in killed) for node in nodes]


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --- the cluster ----------------------------------------------------------------------------


class LocalCluster:
    """The Ray nodes `iaforall cluster up` started on this machine, for one home."""

    def __init__(self, home: Path, token_file: Path) -> None:
        self.home = home
        self.token_file = token_file
        self.root = temp_root(home)

    def leftovers(self) -> dict[int, str]:
        """Processes of ours still running, whatever the state file says."""
        if not self.root.is_dir():
            return {}
        return processes_of(str(path) for path in self.root.iterdir())

    def running(self) -> ClusterState | None:
        """The recorded cluster if any of it runs; a stale record is removed."""
        state = read_state(self.home)
        if state is not None and not self.leftovers():
            state_path(self.home).unlink(missing_ok=True)
            return None
        return state

    def up(self, options: UpOptions, progress: Callable[[str], None]) -> ClusterState:
        if self.running() is not None or self.leftovers():
            raise LocalClusterError(
                f"A cluster started from {self.home} is still running: "
                "`iaforall cluster status` shows it, `iaforall cluster down` stops it."
            )
        if options.nodes < 1:
            raise LocalClusterError("--nodes must be 1 or more.")
        if options.object_store_mb < 75:
            raise LocalClusterError("--object-store-mb must be 75 or more (Ray's minimum).")
        ray = ray_executable()
        if options.auth == "token" and options.join and not self.token_file.is_file():
            raise LocalClusterError(
                f"No token file at {self.token_file}: copy the head's `cluster/auth_token` "
                "there (mode 0600), or set IAFORALL_CLUSTER_TOKEN_FILE."
            )
        if options.auth == "token":
            ensure_token(self.token_file)
        if options.join:
            check_reachable(options.join)
            gcs_address = options.join
            client_address = ""
        else:
            port = options.port or free_port()
            client_port = options.client_port or free_port()
            for what, number in (("--port", port), ("--client-port", client_port)):
                if not port_is_free(number):
                    raise LocalClusterError(
                        f"Port {number} ({what}) is already in use on this machine: "
                        f"choose another with {what} (0: any free one)."
                    )
            gcs_address = f"{options.host}:{port}"
            client_address = f"ray://{options.host}:{client_port}"
        shutil.rmtree(self.root, ignore_errors=True)  # nothing of ours runs (checked above)
        self.root.mkdir(parents=True)
        logs = cluster_dir(self.home) / "logs"
        logs.mkdir(parents=True, exist_ok=True)

        started: list[NodeRecord] = []
        state = ClusterState(
            gcs_address, client_address, options.auth, str(self.token_file), started, time.time()
        )
        try:
            for index in range(options.nodes):
                head = index == 0 and not options.join
                name = "head" if head else f"node{index + 1}"
                ports = {name: free_port() for name in NODE_PORTS}
                if head:
                    ports["dashboard-port"] = free_port()
                    ports["ray-client-server-port"] = int(client_address.rpartition(":")[2])
                started.append(self._start(ray, name, head, options, gcs_address, ports))
                self._save(state)
                began = time.monotonic()
                progress(f"starting {name}…")
                self._wait_ready(started[-1], options.timeout)
                progress(f"{name} ready in {time.monotonic() - began:.1f} s")
        except BaseException:
            stop_nodes(started)
            state_path(self.home).unlink(missing_ok=True)
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        return state

    def down(self) -> list[Stopped]:
        """Stop every node of ours (those recorded, and any leftover), forget the cluster."""
        state = read_state(self.home)
        nodes = list(state.nodes) if state else []
        known = {node.temp_dir for node in nodes}
        if self.root.is_dir():
            nodes += [
                NodeRecord(path.name, False, 0, 0, str(path), "")
                for path in sorted(self.root.iterdir())
                if str(path) not in known and processes_of([str(path)])
            ]
        stopped = stop_nodes(nodes) if nodes else []
        state_path(self.home).unlink(missing_ok=True)
        deadline = time.monotonic() + 10.0  # Ray's workers end a moment after their node
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not self.leftovers():
            shutil.rmtree(self.root, ignore_errors=True)
        return stopped

    def _start(
        self,
        ray: Path,
        name: str,
        head: bool,
        options: UpOptions,
        gcs_address: str,
        ports: dict[str, int],
    ) -> NodeRecord:
        temp_dir = self.root / name
        temp_dir.mkdir()
        log_file = cluster_dir(self.home) / "logs" / f"{name}.log"
        command = node_command(
            ray,
            head=head,
            options=options,
            gcs_address=gcs_address,
            temp_dir=temp_dir,
            ports=ports,
        )
        with log_file.open("w") as log:
            log.write(" ".join(command) + "\n")
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=temp_dir,
                env=node_environment(options.auth, self.token_file, temp_dir),
                start_new_session=True,
            )
        return NodeRecord(name, head, process.pid, process.pid, str(temp_dir), str(log_file), ports)

    def _wait_ready(self, node: NodeRecord, timeout: float) -> None:
        log = Path(node.log_file)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY_LINE in log.read_text(errors="replace"):
                return
            if not _alive(node.pid):
                raise LocalClusterError(
                    f"The {node.name} node failed to start. Last lines of {log}:\n{log_tail(log)}"
                )
            time.sleep(0.2)
        raise LocalClusterError(
            f"The {node.name} node did not start within {timeout:.0f} s. "
            f"Last lines of {log}:\n{log_tail(log)}"
        )

    def _save(self, state: ClusterState) -> None:
        path = state_path(self.home)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.write_text(state.to_json())
        partial.replace(path)
