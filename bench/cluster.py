"""Ray Serve scale-out on this machine: throughput with 1 and 2 replicas, and what Ray adds.

    .venv/bin/python bench/cluster.py [--rounds 2] [--requests 16] [--ttft-samples 30] [--json]

A benchmark, not a test: it prints a table and exits 0 whatever the numbers are. Everything runs
for real, in its own processes, on free loopback ports, from a temporary IAFORALL_HOME holding
the packaged `smollm2:135m`:

- **single**: `iaforall serve` without a cluster (threads 2, 2 slots): the baseline;
- a local cluster, `iaforall cluster up --nodes 2 --num-cpus 2` (token auth on), then
- **1 replica**: `iaforall serve --cluster ray://…` with one replica (threads 2, 2 slots);
- **2 replicas**: the gateway started again with two replicas, one per node (threads 1 each,
  2 slots each): the same two cores, split.

Measured for each, through the HTTP API (`/v1/chat/completions`, streamed, httpx):
- **throughput**: `--requests` answers of `--tokens` tokens by `--concurrency` clients at once:
  completion tokens (from the usage chunk) / wall time from the first request sent to the last
  answer's end;
- **time to first token** (TTFT): `--ttft-samples` short questions one after another, no load:
  request sent -> first chunk with content; p50 and p99 (nearest rank: with 30 samples, p99 is
  the slowest one);
- **cold start**: the first request after the server starts (no preload), to its first token:
  loading the worker on one machine, deploying the Serve application on the cluster.

The single-machine server stays up all along: in each cluster phase the two paths take turns,
round by round, so both see the same machine (a shared VM drifts); the 2 / 1 replica ratio is
given raw and normalised by the single path measured in the same phase. Other people's processes
on a 2-core machine move every figure (llama.cpp with 2 threads slows down several times when
another process takes a third of the CPU): before each block the script waits (up to
`--quiet-wait` s) for them to use under 10 % of the CPU, and prints the share they used during
each block ("others"; ours are the processes carrying our temporary IAFORALL_HOME) and the load
average.
Only what this script started is stopped (`cluster down`, never `ray stop`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from iaforall.cluster.local import read_state
from iaforall.models.store import ModelStore

MODEL = "smollm2:135m"
RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
_CONTENT = b'"content":"'  # a delta carrying text (the role chunk has "content":null)
_USAGE = b'"usage":'
QUIET = 0.10  # others' share of the CPU under which a block may start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


# -- whose CPU is it? ---------------------------------------------------------------------------


def _ticks(pid: str) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


class CpuWatch:
    """The share of the machine's CPU that processes not ours used between two samples.

    Ours: this script and every process carrying our temporary IAFORALL_HOME in its environment
    (the servers, their workers, the Ray nodes and their replicas all inherit it).
    """

    def __init__(self, home: Path) -> None:
        self._mark = f"IAFORALL_HOME={home}".encode()
        self._ours: dict[str, bool] = {}

    def _is_ours(self, pid: str) -> bool:
        if pid not in self._ours:
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                environ = b""
            self._ours[pid] = pid == str(os.getpid()) or self._mark in environ.split(b"\0")
        return self._ours[pid]

    def sample(self) -> tuple[int, int, int] | None:
        """(busy ticks of the machine, all ticks, ticks of our processes); None off Linux."""
        try:
            ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        except OSError:
            return None
        idle = ticks[3] + ticks[4]
        pids = [p.name for p in Path("/proc").iterdir() if p.name.isdigit()]
        ours = sum(_ticks(pid) for pid in pids if self._is_ours(pid))
        return sum(ticks) - idle, sum(ticks), ours

    @staticmethod
    def foreign(a: tuple[int, int, int] | None, b: tuple[int, int, int] | None) -> float | None:
        if a is None or b is None or b[1] <= a[1]:
            return None
        # Our processes that ended between the samples are missing from b: never below zero.
        return max(0.0, ((b[0] - a[0]) - (b[2] - a[2])) / (b[1] - a[1]))


# -- one streamed answer ------------------------------------------------------------------------


@dataclass
class Answer:
    submitted: float
    first: float | None = None
    done: float | None = None
    tokens: int = 0

    @property
    def ttft(self) -> float:
        assert self.first is not None
        return self.first - self.submitted


def stream(client: httpx.Client, prompt: str, max_tokens: int) -> Answer:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    answer = Answer(time.perf_counter())
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.read()[:300]!r}")
        buffer = b""
        for raw in response.iter_raw():
            now = time.perf_counter()
            *events, buffer = (buffer + raw).split(b"\n\n")
            for event in events:
                data = event.removeprefix(b"data: ")
                if data.startswith(b'{"error"'):
                    raise RuntimeError(data.decode(errors="replace"))
                if _CONTENT in data and answer.first is None:
                    answer.first = now
                elif _USAGE in data and b'"usage":null' not in data:
                    answer.tokens = int(json.loads(data)["usage"]["completion_tokens"])
    answer.done = time.perf_counter()
    if answer.first is None or answer.tokens < 1:
        raise RuntimeError(f"an answer without tokens ({answer.tokens})")
    return answer


# -- a server process ---------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    started_in: float  # spawn -> /health answers (a gateway joins Ray and starts Serve first)

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/health", timeout=10).json()
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(name: str, home: Path, logs: Path, **env: str) -> Server:
    port = free_port()
    log = logs / f"{name.replace(' ', '-')}.log"
    environment = {
        **os.environ,
        **RAY_ENV,
        "IAFORALL_HOME": str(home),
        "IAFORALL_MODEL": MODEL,
        "IAFORALL_PRELOAD": "false",  # the first request is timed: cold start
        "IAFORALL_CONTEXT_LENGTH": "2048",
        "IAFORALL_LOG_LEVEL": "info",
        **env,
    }
    began = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "iaforall", "serve", "--port", str(port)],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log, 0.0)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                server.started_in = time.perf_counter() - began
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not answer in 180 s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def running(name: str, home: Path, logs: Path, **env: str) -> Iterator[Server]:
    server = start_server(name, home, logs, **env)
    try:
        yield server
    finally:
        server.stop()


def cli(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iaforall", "cluster", *args],
        env={**os.environ, **RAY_ENV, "IAFORALL_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- measuring one path -------------------------------------------------------------------------


@dataclass
class Target:
    """One way of serving the model, and what was measured on it."""

    name: str
    cold_start: float | None = None
    started_in: float | None = None
    ttfts: list[float] = field(default_factory=list)
    batches: list[tuple[int, float]] = field(default_factory=list)  # (tokens, wall seconds)
    token_counts: list[int] = field(default_factory=list)
    served_by: dict[str, int] = field(default_factory=dict)
    foreign: list[float] = field(default_factory=list)  # others' CPU share, per measured block

    @property
    def throughput(self) -> float:
        return sum(t for t, _ in self.batches) / sum(w for _, w in self.batches)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.ttfts)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class Bench:
    def __init__(self, args: argparse.Namespace, cpu: CpuWatch) -> None:
        self.args = args
        self.cpu = cpu
        self.labels = iter(range(10**9))  # every prompt differs: no prompt-cache hits

    def prompt(self, long: bool) -> str:
        label = next(self.labels)
        if long:
            return f"Story {label}: write a very long story about a lighthouse keeper and a storm."
        return f"Question {label}: what is the capital of France?"

    def cold(self, server: Server, path: Target) -> None:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            path.cold_start = stream(client, self.prompt(False), 8).ttft
        path.started_in = server.started_in

    def warm_up(self, server: Server) -> None:
        self.throughput(server, None, requests=self.args.concurrency)
        self.ttft(server, None, samples=3)

    def wait_quiet(self) -> None:
        """Before each measured block: wait (up to --quiet-wait s) for others' CPU to drop.

        On 2 cores llama.cpp with 2 threads slows down several times when another process
        takes even a third of the CPU; a block measured then says more about the neighbours.
        """
        deadline = time.monotonic() + self.args.quiet_wait
        warned = False
        while True:
            before = self.cpu.sample()
            time.sleep(1.0)
            share = CpuWatch.foreign(before, self.cpu.sample())
            if share is None or share <= QUIET or time.monotonic() > deadline:
                return
            if not warned:
                print(f"  waiting for other processes ({share:.0%} CPU) to go quiet...", flush=True)
                warned = True

    def throughput(self, server: Server, path: Target | None, requests: int) -> None:
        n = self.args.concurrency
        clients = [httpx.Client(base_url=server.url, timeout=300) for _ in range(n)]
        queue = iter(range(requests))
        lock = threading.Lock()
        answers: list[Answer] = []

        def client_loop(i: int) -> None:
            while True:
                with lock:
                    if next(queue, None) is None:
                        return
                    prompt = self.prompt(True)
                answer = stream(clients[i], prompt, self.args.tokens)
                with lock:
                    answers.append(answer)

        try:
            began = time.perf_counter()
            with ThreadPoolExecutor(n) as pool:
                list(pool.map(client_loop, range(n)))
            wall = time.perf_counter() - began
        finally:
            for c in clients:
                c.close()
        if path is not None:
            path.batches.append((sum(a.tokens for a in answers), wall))
            path.token_counts += [a.tokens for a in answers]

    def ttft(self, server: Server, path: Target | None, samples: int) -> None:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            for _ in range(samples):
                answer = stream(client, self.prompt(False), self.args.short_tokens)
                if path is not None:
                    path.ttfts.append(answer.ttft)

    def rounds(self, pairs: Sequence[tuple[Server, Target]]) -> None:
        """The paths take turns, round by round, alternating who goes first."""
        rounds = self.args.rounds
        per_round = [
            (self.args.requests // rounds, self.args.ttft_samples // rounds) for _ in range(rounds)
        ]
        for r, (requests, samples) in enumerate(per_round):
            for server, path in pairs if r % 2 == 0 else list(reversed(pairs)):
                self.wait_quiet()
                before = self.cpu.sample()
                self.throughput(server, path, requests)
                self.ttft(server, path, samples)
                share = CpuWatch.foreign(before, self.cpu.sample())
                if share is not None:
                    path.foreign.append(share)
                tokens, wall = path.batches[-1]
                print(
                    f"  round {r + 1}, {path.name}: {tokens / wall:.1f} tok/s, TTFT p50 "
                    f"{statistics.median(path.ttfts[-samples:]) * 1000:.0f} ms, others' CPU "
                    + (f"{share:.0%}" if share is not None else "?"),
                    flush=True,
                )
            print(f"  round {r + 1}/{rounds} done; load average {load_average()}", flush=True)


def record_served_by(server: Server, path: Target) -> None:
    model = next((m for m in server.health()["models"] if m["name"] == MODEL), None)
    if model is not None:
        path.served_by = dict(model.get("served_by") or {})


def wait_undeployed(home: Path, timeout: float = 60) -> None:
    """After a gateway stops (it deletes its application), before the next one deploys."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = cli(home, "status", "--json", timeout=60)
        if status.returncode == 0:
            with contextlib.suppress(ValueError):
                if not json.loads(status.stdout).get("models"):
                    return
        time.sleep(1)
    print("  (the previous application was still listed; going on)", flush=True)


# -- the run ------------------------------------------------------------------------------------


def run(args: argparse.Namespace, home: Path, logs: Path) -> dict[str, Any]:
    ModelStore(home, install_missing=False).pull_packaged(MODEL)
    single, one, two = Target("single"), Target("1 replica"), Target("2 replicas")
    facts: dict[str, Any] = {"load_average": {"start": load_average()}}
    bench = Bench(args, CpuWatch(home))
    serve_port = str(free_port())
    gateway_env = {
        "IAFORALL_CLUSTER_SERVE_PORT": serve_port,
        "IAFORALL_CLUSTER_STATUS_INTERVAL": "0.5",
    }
    print(f"load average at start: {load_average()}", flush=True)
    with running("single", home, logs, IAFORALL_THREADS="2", IAFORALL_PARALLEL="2") as base:
        bench.cold(base, single)
        bench.warm_up(base)
        print(f"single machine: up, cold first token {single.cold_start:.2f} s", flush=True)

        state = None
        try:  # `down` in any case: even an `up` cut short may have started nodes
            began = time.perf_counter()
            up = cli(
                home, "up", "--nodes", "2", "--port", "0", "--client-port", "0", "--num-cpus", "2"
            )
            facts["cluster_up_s"] = round(time.perf_counter() - began, 2)
            if up.returncode != 0:
                raise RuntimeError(f"cluster up failed:\n{up.stdout}{up.stderr}")
            state = read_state(home)
            assert state is not None
            address = state.client_address
            print(f"cluster up in {facts['cluster_up_s']:.1f} s at {address}", flush=True)
            phases = [
                (one, {"IAFORALL_THREADS": "2", "IAFORALL_CLUSTER_REPLICAS": "1"}),
                (
                    two,
                    {
                        "IAFORALL_THREADS": "1",
                        "IAFORALL_CLUSTER_REPLICAS": "2",
                        "IAFORALL_CLUSTER_REPLICAS_PER_NODE": "1",
                    },
                ),
            ]
            for n, (path, env) in enumerate(phases):
                if n:
                    wait_undeployed(home)
                env = {**gateway_env, **env, "IAFORALL_PARALLEL": "2", "IAFORALL_CLUSTER": address}
                with running(f"gateway {path.name}", home, logs, **env) as gateway:
                    bench.cold(gateway, path)
                    print(
                        f"{path.name}: gateway up in {path.started_in:.1f} s, cold first token "
                        f"(deploy) {path.cold_start:.1f} s",
                        flush=True,
                    )
                    bench.warm_up(gateway)
                    facts["load_average"][path.name] = load_average()
                    before = len(single.batches), len(single.ttfts)
                    bench.rounds([(base, single), (gateway, path)])
                    facts.setdefault("single_in_phase", {})[path.name] = {
                        "tokens_s": sum(t for t, _ in single.batches[before[0] :])
                        / sum(w for _, w in single.batches[before[0] :]),
                        "ttft_p50": statistics.median(single.ttfts[before[1] :]),
                    }
                    record_served_by(gateway, path)
                    facts["cluster_health_" + path.name] = gateway.health().get("cluster")
        finally:
            down = cli(home, "down")
            print(f"cluster down: {(down.stdout + down.stderr).strip()}", flush=True)
            if down.returncode == 0 and state is not None:
                # `down` leaves the nodes' temp dirs (Ray's session logs): ours, made for this run.
                for root in {Path(node.temp_dir).parent for node in state.nodes}:
                    if root.name.startswith("iaforall-ray-"):
                        shutil.rmtree(root, ignore_errors=True)
    facts["load_average"]["end"] = load_average()
    return {"facts": facts, "paths": [single, one, two]}


def report(args: argparse.Namespace, results: dict[str, Any]) -> dict[str, Any]:
    facts = results["facts"]
    single, one, two = results["paths"]
    print()
    print(
        f"machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}; model {MODEL}; load average: "
        + "; ".join(f"{k} {v}" for k, v in facts["load_average"].items())
    )
    print(
        f"throughput: {args.requests} streamed answers of max {args.tokens} tokens per path, "
        f"{args.concurrency} clients at once, completion tokens / wall time; TTFT: "
        f"{args.ttft_samples} short questions in a row (max {args.short_tokens} tokens), "
        "p99 = nearest rank; the paths took turns in "
        f"{args.rounds} rounds per phase; cluster: 2 nodes x --num-cpus 2 on this machine;\n"
        "others: share of the machine's CPU used by processes not ours while the path was "
        "measured (mean of its blocks); start: spawn -> /health answers"
    )
    print()
    head = (
        f"{'path':<11} | {'threads x slots':>15} | {'tok/s':>6} | {'TTFT p50':>9} | "
        f"{'TTFT p99':>9} | {'cold 1st token':>14} | {'start':>6} | {'others':>6} | served by"
    )
    print(head)
    print("-" * len(head))
    shapes = {"single": "2 x 2", "1 replica": "2 x 2", "2 replicas": "2 x (1 x 2)"}
    rows = []
    for p in (single, one, two):
        served = ", ".join(f"{k}: {v}" for k, v in sorted(p.served_by.items())) or "-"
        others = f"{statistics.mean(p.foreign):.0%}" if p.foreign else "?"
        print(
            f"{p.name:<11} | {shapes[p.name]:>15} | {p.throughput:>6.1f} | "
            f"{p.percentile(50) * 1000:>6.0f} ms | {p.percentile(99) * 1000:>6.0f} ms | "
            f"{p.cold_start:>12.2f} s | {p.started_in:>4.1f} s | {others:>6} | {served}"
        )
        rows.append(
            {
                "path": p.name,
                "tokens_s": round(p.throughput, 2),
                "ttft_p50_ms": round(p.percentile(50) * 1000, 1),
                "ttft_p99_ms": round(p.percentile(99) * 1000, 1),
                "cold_first_token_s": round(p.cold_start, 2),
                "server_start_s": round(p.started_in, 2),
                "tokens_per_answer": [min(p.token_counts), max(p.token_counts)],
                "served_by": p.served_by,
                "others_cpu_share": [round(f, 3) for f in p.foreign],
                "ttfts_ms": [round(t * 1000, 1) for t in p.ttfts],
                "batches": p.batches,
            }
        )
    print()
    in_phase = facts["single_in_phase"]
    raw = two.throughput / one.throughput
    norm = (two.throughput / in_phase["2 replicas"]["tokens_s"]) / (
        one.throughput / in_phase["1 replica"]["tokens_s"]
    )
    ratios: dict[str, float] = {
        "2_over_1_replica_tokens_s": raw,
        "2_over_1_replica_normalised": norm,
        "1_replica_over_single_tokens_s": one.throughput / single.throughput,
        "2_replicas_over_single_tokens_s": two.throughput / single.throughput,
    }
    print(
        f"throughput 2 replicas / 1 replica: {raw:.3f} (normalised by single per phase: {norm:.3f})"
    )
    print(
        f"throughput 1 replica / single: {ratios['1_replica_over_single_tokens_s']:.3f}; "
        f"2 replicas / single: {ratios['2_replicas_over_single_tokens_s']:.3f}"
    )
    for p in (one, two):
        for q in (50, 99):
            extra = (p.percentile(q) - single.percentile(q)) * 1000
            ratio = p.percentile(q) / single.percentile(q)
            ratios[f"{p.name} ttft_p{q}_overhead_ms"] = extra
            ratios[f"{p.name} ttft_p{q}_ratio"] = ratio
            print(
                f"Ray overhead per request, {p.name}, TTFT p{q}: {extra:+.0f} ms "
                f"(x{ratio:.2f} the single machine's)"
            )
    print(
        f"cold start (first request -> first token, no preload): single {single.cold_start:.2f} s "
        f"(worker load); 1 replica {one.cold_start:.2f} s, 2 replicas {two.cold_start:.2f} s "
        f"(gateway -> cluster deploy); cluster up (2 nodes) {facts['cluster_up_s']:.1f} s"
    )
    for name, phase in in_phase.items():
        print(
            f"single path during the {name} phase: {phase['tokens_s']:.1f} tok/s, "
            f"TTFT p50 {phase['ttft_p50'] * 1000:.0f} ms"
        )
    return {
        "facts": {k: v for k, v in facts.items() if not k.startswith("cluster_health")},
        "rows": rows,
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "cluster_health": {k: v for k, v in facts.items() if k.startswith("cluster_health")},
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--requests", type=int, default=16, help="answers per path for throughput")
    p.add_argument("--concurrency", type=int, default=4, help="clients at once for throughput")
    p.add_argument("--tokens", type=int, default=64, help="max tokens of a throughput answer")
    p.add_argument("--ttft-samples", type=int, default=30, help="short questions per path")
    p.add_argument("--short-tokens", type=int, default=8, help="max tokens of a short answer")
    p.add_argument("--rounds", type=int, default=2, help="turns per phase (requests are split)")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="seconds to wait, before each block, for other processes to leave the CPU",
    )
    p.add_argument("--keep-logs", type=Path, help="copy the servers' logs to this folder")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = p.parse_args(argv)
    if args.requests < args.rounds or args.ttft_samples < args.rounds or args.rounds < 1:
        p.error("--requests and --ttft-samples must be at least --rounds (>= 1)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    with tempfile.TemporaryDirectory(prefix="iaforall-bench-cluster-") as tmp:
        home, logs = Path(tmp) / "home", Path(tmp) / "logs"
        logs.mkdir()
        try:
            results = run(args, home, logs)
        finally:
            if args.keep_logs:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for log in logs.iterdir():
                    (args.keep_logs / log.name).write_bytes(log.read_bytes())
        summary = report(args, results)
        if args.json:
            print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
