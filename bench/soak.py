"""Soak and faults: many streaming clients against the real server for minutes, then kill -9 of
its engine processes in the middle of requests.

    .venv/bin/python bench/soak.py [--seconds 300] [--clients 64] [--json]   (make bench-soak)

A benchmark with one verdict: it prints its figures and exits 1 if any request hung (the server
neither answered nor streamed anything for `--hang-after` seconds) or an engine did not recover;
0 otherwise, whatever the other numbers are.

Everything is real: `iaforall serve` in its own process on a free loopback port, a temporary
IAFORALL_HOME holding the packaged `smollm2:135m` (2 threads, the default 2 slots and queue of
32), Whisper tiny.en and the piper voice from their packages. The clients are httpx, async:

- **soak**: `--clients` lanes each stream OpenAI chat completions (`stream: true`, a short
  question, `--max-tokens`) one after the other for `--seconds`; one lane transcribes (streamed
  `/v1/audio/transcriptions` of a WAV our own voice made) and one speaks (`/v1/audio/speech`,
  three sentences, `stream_format: sse`), each pausing `--audio-pause` s between requests. A 429
  is honoured: the lane sleeps its `Retry-After`, then goes on. Outcomes per kind: 200 (a
  complete answer), 429, error event (a 200 whose stream carried an error), other (any other
  status, a connection cut, an empty answer), hang. Resident memory (VmRSS), open files and
  threads of the server process are read from /proc at the start (after one request of each kind
  has loaded everything), in the middle and at the end.
- **faults**, after the soak, the machine otherwise idle: each kill is done while requests are
  under way, then a probe sends fresh requests one after the other until one succeeds.
  *Chat*: `--fault-streams` long answers in flight (two generating, the rest waiting), kill -9
  of the llama.cpp worker (the server's child running `iaforall.engines.llamacpp.worker`).
  *Speech*: a long text being spoken, kill -9 of the resident piper process.
  *Transcription*: Whisper runs inside the server process (faster-whisper in a thread), so there
  is no process of its own to kill; the fault is a client that goes away in the middle of a long
  transcription, which must give its turn back at once.
  Time to recover = from the kill to the first content (a token, audio, text) produced after it
  by any request, and to the end of the first complete successful request after it.

On a shared 2-core machine other people's work slows the engines several times: the soak waits
(up to `--quiet-wait` s) for them to use under a quarter of the CPU, and prints the share they
used during it. A slower machine makes every wait longer; a request waiting in line still hears
its place every 15 s, so only a real stall counts as a hang. Develop with
`--seconds 20 --clients 16`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from iaforall.models.store import ModelStore

MODEL = "smollm2:135m"
WORKER_MODULE = "iaforall.engines.llamacpp.worker"
OK, BUSY, ERROR_EVENT, OTHER, HANG = "200", "429", "error event", "other", "hang"
OUTCOMES = (OK, BUSY, ERROR_EVENT, OTHER, HANG)
KINDS = ("chat", "transcription", "speech")
SAY = "The library opens at nine in the morning and closes at six in the evening."
SPEECH = (
    "Please return your books before the end of the month. "
    "Children can join the reading club every Saturday afternoon. "
    "We also lend music, films and board games to everyone with a card."
)
LONG_SPEECH = " ".join(
    f"Announcement number {n}: the swimming pool will be closed for repairs on day {n} of June, "
    "and members may use the pool in the next village at no extra cost."
    for n in range(1, 13)
)
_CONTENT = b'"content":"'  # a chat delta carrying text (the role chunk has "content":null)
_USAGE = b'"usage":{'
MAX_RETRY_AFTER = 60.0  # the longest Retry-After honoured (the server says at most 60)
PROBE_EVERY = 0.25  # seconds between two recovery probes
RECOVERY_BOUND = 180.0  # seconds after which an engine counts as not recovered


# -- one request and what came of it ------------------------------------------------------------


@dataclass
class Mark:
    """The moment of a fault (None before it): content seen after it is counted as recovery."""

    at: float | None = None


@dataclass
class Result:
    kind: str
    started: float
    outcome: str = OTHER
    detail: str = ""
    first: float | None = None  # first content
    after_mark: float | None = None  # first content after the fault's moment
    done: float | None = None
    tokens: int = 0
    retry_after: float | None = None

    def content(self, now: float, mark: Mark | None) -> None:
        if self.first is None:
            self.first = now
        if mark is not None and mark.at is not None and now > mark.at and self.after_mark is None:
            self.after_mark = now


def classify_status(result: Result, response: httpx.Response, body: bytes) -> Result:
    result.done = time.monotonic()
    if response.status_code == 429:
        result.outcome = BUSY
        with contextlib.suppress(ValueError):
            result.retry_after = float(response.headers.get("Retry-After", "1"))
    else:
        result.outcome = OTHER
        result.detail = f"HTTP {response.status_code}: {error_code(body)}"
    return result


def error_code(data: bytes) -> str:
    """The `code` (else the start of the message) of an OpenAI-shaped error body or event."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        error = json.loads(data)["error"]
        return str(error.get("code") or error.get("message", "")[:80])
    return data[:80].decode(errors="replace")


class Events:
    """Server-sent events out of raw chunks: `data:` payloads only (comments are the queue's)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, raw: bytes) -> list[bytes]:
        *events, self._buffer = (self._buffer + raw).split(b"\n\n")
        return [e[6:] for e in events if e.startswith(b"data: ")]


async def bounded(
    kind: str, work: Callable[[Result], Awaitable[Result]], cap: float, hang_after: float
) -> Result:
    """Run one request; a silence of `hang_after` s (httpx's read timeout) or a request still
    running after `cap` s is a hang; a cut connection is "other"."""
    result = Result(kind, time.monotonic())
    try:
        async with asyncio.timeout(cap):
            return await work(result)
    except TimeoutError:
        result.outcome, result.detail = HANG, f"still running after {cap:.0f} s"
    except httpx.TimeoutException as exc:
        result.outcome = HANG
        result.detail = f"{type(exc).__name__}: nothing for {hang_after:.0f} s"
    except httpx.TransportError as exc:
        result.outcome, result.detail = OTHER, f"connection: {type(exc).__name__}"
    result.done = time.monotonic()
    return result


async def chat(
    client: httpx.AsyncClient,
    result: Result,
    question: str,
    max_tokens: int,
    mark: Mark | None = None,
    streaming: asyncio.Event | None = None,
) -> Result:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            return classify_status(result, response, await response.aread())
        events = Events()
        finished = False
        async for raw in response.aiter_raw():
            now = time.monotonic()
            for data in events.feed(raw):
                if data == b"[DONE]":
                    finished = True
                elif data.startswith(b'{"error"'):
                    result.outcome, result.detail = ERROR_EVENT, error_code(data)
                elif _CONTENT in data:
                    result.content(now, mark)
                    if streaming is not None:
                        streaming.set()
                elif _USAGE in data:
                    result.tokens = int(json.loads(data)["usage"]["completion_tokens"])
    result.done = time.monotonic()
    if result.outcome == ERROR_EVENT:
        return result
    if not finished:
        result.outcome, result.detail = OTHER, "stream ended without [DONE]"
    elif result.first is None:
        result.outcome, result.detail = OTHER, "no content"
    else:
        result.outcome = OK
    return result


async def transcribe(
    client: httpx.AsyncClient,
    result: Result,
    wav: bytes,
    mark: Mark | None = None,
    leave_after_first: bool = False,
) -> Result:
    """A streamed transcription (transcript.text.delta events, then .done); with
    `leave_after_first`, the client goes away at the first delta."""
    files = {"file": ("soak.wav", wav, "audio/wav")}
    data = {"model": "whisper-1", "stream": "true", "language": "en"}
    async with client.stream("POST", "/v1/audio/transcriptions", files=files, data=data) as r:
        if r.status_code != 200:
            return classify_status(result, r, await r.aread())
        events = Events()
        text = ""
        async for raw in r.aiter_raw():
            now = time.monotonic()
            for payload in events.feed(raw):
                if payload.startswith(b'{"error"'):
                    result.outcome, result.detail = ERROR_EVENT, error_code(payload)
                    continue
                event = json.loads(payload)
                if event.get("type") == "transcript.text.delta":
                    result.content(now, mark)
                    if leave_after_first:
                        result.outcome, result.detail = OTHER, "left mid-transcription"
                        result.done = now
                        return result
                elif event.get("type") == "transcript.text.done":
                    text = event.get("text", "")
    result.done = time.monotonic()
    if result.outcome != ERROR_EVENT:
        result.outcome = OK if text.strip() else OTHER
        result.detail = "" if text.strip() else "empty transcript"
    return result


async def speak(
    client: httpx.AsyncClient,
    result: Result,
    text: str,
    mark: Mark | None = None,
    streaming: asyncio.Event | None = None,
) -> Result:
    """Speech as server-sent events (speech.audio.delta, then speech.audio.done)."""
    body = {
        "model": "tts-1",
        "voice": "alloy",
        "input": text,
        "response_format": "wav",
        "stream_format": "sse",
    }
    async with client.stream("POST", "/v1/audio/speech", json=body) as r:
        if r.status_code != 200:
            return classify_status(result, r, await r.aread())
        events = Events()
        finished = False
        async for raw in r.aiter_raw():
            now = time.monotonic()
            for payload in events.feed(raw):
                if payload.startswith(b'{"error"'):
                    result.outcome, result.detail = ERROR_EVENT, error_code(payload)
                elif b'"speech.audio.delta"' in payload:
                    result.content(now, mark)
                    if streaming is not None:
                        streaming.set()
                elif b'"speech.audio.done"' in payload:
                    finished = True
    result.done = time.monotonic()
    if result.outcome != ERROR_EVENT:
        result.outcome = OK if finished and result.first is not None else OTHER
        result.detail = "" if result.outcome == OK else "no speech.audio.done"
    return result


# -- the server and its processes ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running_server(home: Path, model: str = MODEL, **env: str) -> Iterator[Server]:
    """`iaforall serve` on a free loopback port with `home`'s models, once it answers (the
    environment's variables plus `env`)."""
    port = free_port()
    log = home / "server.log"
    environment = {
        **os.environ,
        "IAFORALL_HOME": str(home),
        "IAFORALL_MODEL": model,
        "IAFORALL_THREADS": "2",
        "IAFORALL_CONTEXT_LENGTH": "2048",
        "IAFORALL_LOG_LEVEL": "warning",
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "iaforall", "serve", "--port", str(port)],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not answer in 120 s:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.2)
        yield server
    finally:
        server.stop()


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc, no psutil)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def child_running(server: Server, *needles: str) -> int | None:
    """The server's child whose command line holds every needle."""
    for pid in children(server.pid):
        line = command_line(pid)
        if all(n in line for n in needles):
            return pid
    return None


class CpuWatch:
    """The share of the machine's CPU that other people's processes used between two samples:
    ours are this script and every process carrying one of our IAFORALL_HOMEs in its environment
    (the servers, their workers, piper)."""

    def __init__(self, *homes: Path) -> None:
        self._marks = {f"IAFORALL_HOME={home}".encode() for home in homes}
        self._ours: dict[str, bool] = {}

    def _is_ours(self, pid: str) -> bool:
        if pid not in self._ours:
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                environ = b""
            mine = not self._marks.isdisjoint(environ.split(b"\0"))
            self._ours[pid] = pid == str(os.getpid()) or mine
        return self._ours[pid]

    def sample(self) -> tuple[int, int, int] | None:
        """(busy ticks of the machine, all ticks, ticks of our processes); None off Linux."""
        try:
            ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        except OSError:
            return None
        ours = 0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and self._is_ours(entry.name):
                with contextlib.suppress(OSError, IndexError, ValueError):
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    # utime, stime and those of reaped children (a restarted worker's own
                    # time moves into its parent's when it ends: still ours)
                    ours += sum(int(v) for v in fields[11:15])
        return sum(ticks) - ticks[3] - ticks[4], sum(ticks), ours

    @staticmethod
    def others(a: tuple[int, int, int] | None, b: tuple[int, int, int] | None) -> float | None:
        if a is None or b is None or b[1] <= a[1]:
            return None
        # Our processes that ended unreaped between the samples are missing from b: never
        # below zero.
        return round(max(0.0, ((b[0] - a[0]) - (b[2] - a[2])) / (b[1] - a[1])), 3)


async def wait_quiet(cpu: CpuWatch, patience: float, quiet: float = 0.25) -> float | None:
    """Wait (up to `patience` s) until other people's processes use under `quiet` of the CPU:
    on a 2-core machine their load slows our engines several times. The share last seen."""
    deadline = time.monotonic() + patience
    warned = False
    while True:
        a = cpu.sample()
        await asyncio.sleep(2)
        share = CpuWatch.others(a, cpu.sample())
        if share is None or share <= quiet or time.monotonic() > deadline:
            return share
        if not warned:
            print(f"  waiting for other processes ({share:.0%} CPU) to go quiet...", flush=True)
            warned = True


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the soak started
    rss_mb: float
    fds: int
    threads: int
    worker_rss_mb: float | None


def status_field(pid: int, name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def sample(server: Server, since: float) -> Sample:
    rss = status_field(server.pid, "VmRSS") or 0
    try:
        fds = len(os.listdir(f"/proc/{server.pid}/fd"))
    except OSError:
        fds = -1
    worker = child_running(server, WORKER_MODULE)
    worker_rss = status_field(worker, "VmRSS") if worker else None
    return Sample(
        round(time.monotonic() - since, 1),
        round(rss / 1024, 1),
        fds,
        status_field(server.pid, "Threads") or 0,
        None if worker_rss is None else round(worker_rss / 1024, 1),
    )


# -- the soak -----------------------------------------------------------------------------------


@dataclass
class Tally:
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: {k: Counter() for k in KINDS})
    details: Counter[str] = field(default_factory=Counter)
    ttft: list[float] = field(default_factory=list)
    tokens: int = 0
    slept_s: float = 0.0  # time spent honouring Retry-After

    def add(self, r: Result) -> None:
        self.outcomes[r.kind][r.outcome] += 1
        if r.detail:
            self.details[f"{r.kind}: {r.outcome}: {r.detail}"] += 1
        if r.outcome == OK and r.kind == "chat" and r.first is not None:
            self.ttft.append(r.first - r.started)
            self.tokens += r.tokens

    @property
    def hangs(self) -> int:
        return sum(c[HANG] for c in self.outcomes.values())


Work = Callable[[httpx.AsyncClient, Result], Awaitable[Result]]


async def lane(
    url: str,
    kind: str,
    work: Work,
    *,
    until: float,
    pause: float,
    tally: Tally,
    args: argparse.Namespace,
    most: int = 100_000,
) -> None:
    """Requests one after the other until `until` (at most `most`): a 429 sleeps its
    Retry-After, another failure 1 s, a success `pause`."""
    timeout = httpx.Timeout(args.hang_after, connect=10.0)
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
        for _ in range(most):
            if time.monotonic() >= until:
                return
            result = await bounded(
                kind, lambda r: work(client, r), args.request_cap, args.hang_after
            )
            tally.add(result)
            left = max(0.0, until - time.monotonic())
            if result.outcome == BUSY:
                wait = min(result.retry_after or 1.0, MAX_RETRY_AFTER, left)
                tally.slept_s += wait
            else:
                wait = min(pause if result.outcome == OK else 1.0, left)
            await asyncio.sleep(wait)


async def soak(
    server: Server, args: argparse.Namespace, wav: bytes, cpu: CpuWatch
) -> dict[str, Any]:
    tally = Tally()
    cpu_before = cpu.sample()
    load_before = round(os.getloadavg()[0], 2)
    started = time.monotonic()
    until = started + args.seconds
    samples = [sample(server, started)]
    counter = iter(range(10**9))

    async def chat_work(client: httpx.AsyncClient, r: Result) -> Result:
        n = next(counter)
        return await chat(
            client, r, f"In one sentence, what is {n % 97} plus {n % 13}?", args.max_tokens
        )

    async def transcription_work(client: httpx.AsyncClient, r: Result) -> Result:
        return await transcribe(client, r, wav)

    async def speech_work(client: httpx.AsyncClient, r: Result) -> Result:
        return await speak(client, r, SPEECH)

    lanes = [
        asyncio.create_task(
            lane(server.url, "chat", chat_work, until=until, pause=0.0, tally=tally, args=args)
        )
        for _ in range(args.clients)
    ]
    lanes += [
        asyncio.create_task(
            lane(
                server.url, kind, work, until=until, pause=args.audio_pause, tally=tally, args=args
            )
        )
        for kind, work in (("transcription", transcription_work), ("speech", speech_work))
    ]
    # Sample every few seconds while the lanes run; the lanes end by themselves (each request is
    # bounded by --request-cap), the wait for them is bounded too.
    every = max(1.0, args.seconds / 60)
    stop_waiting = until + args.request_cap + 30
    while not all(t.done() for t in lanes) and time.monotonic() < stop_waiting:
        await asyncio.wait(lanes, timeout=every)
        samples.append(sample(server, started))
    stuck = [t for t in lanes if not t.done()]
    for t in stuck:
        t.cancel()
    await asyncio.gather(*lanes, return_exceptions=True)
    for t in lanes:
        if not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]
    elapsed = time.monotonic() - started
    others = CpuWatch.others(cpu_before, cpu.sample())
    middle = min(samples, key=lambda s: abs(s.at - args.seconds / 2))
    return {
        "seconds": round(elapsed, 1),
        "outcomes": {k: {o: tally.outcomes[k][o] for o in OUTCOMES} for k in KINDS},
        "details": dict(tally.details.most_common(12)),
        "hangs": tally.hangs + len(stuck),
        "lanes_stuck": len(stuck),
        "chat_ttft_p50_s": round(statistics.median(tally.ttft), 2) if tally.ttft else None,
        "chat_ttft_p95_s": round(percentile(tally.ttft, 0.95), 2) if tally.ttft else None,
        "chat_tokens_per_s": round(tally.tokens / elapsed, 1),
        "retry_after_slept_s": round(tally.slept_s, 1),
        "others_cpu_share": others,
        "load_average": [load_before, round(os.getloadavg()[0], 2)],
        "memory": {
            "start": samples[0].__dict__,
            "middle": middle.__dict__,
            "end": samples[-1].__dict__,
            "max_rss_mb": max(s.rss_mb for s in samples),
        },
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- faults -------------------------------------------------------------------------------------


@dataclass
class Recovery:
    what: str
    killed: str  # the process killed, or what was done instead
    in_flight: Counter[str] = field(default_factory=Counter)
    probes: Counter[str] = field(default_factory=Counter)
    first_content_s: float | None = None
    first_success_s: float | None = None
    details: Counter[str] = field(default_factory=Counter)
    replaced_by: str = ""
    rss_after_mb: float = 0.0  # the server's, once this fault is over

    def summary(self) -> dict[str, Any]:
        return {
            "rss_after_mb": self.rss_after_mb,
            "killed": self.killed,
            "in_flight": dict(self.in_flight),
            "probes": dict(self.probes),
            "first_content_s": self.first_content_s,
            "first_success_s": self.first_success_s,
            "details": dict(self.details),
            "replaced_by": self.replaced_by,
        }

    @property
    def hangs(self) -> int:
        return self.in_flight[HANG] + self.probes[HANG]

    @property
    def recovered(self) -> bool:
        return self.first_success_s is not None


async def fault(
    server: Server,
    args: argparse.Namespace,
    recovery: Recovery,
    in_flight: list[Callable[[httpx.AsyncClient, Result, Mark, asyncio.Event], Awaitable[Result]]],
    strike: Callable[[], str],
    probe: Callable[[httpx.AsyncClient, Result, Mark], Awaitable[Result]],
    strike_after: float = 0.3,
) -> Recovery:
    """Start the in-flight requests, strike `strike_after` s after one streams (well inside
    the answer), then probe until a success."""
    mark = Mark()
    streaming = asyncio.Event()
    timeout = httpx.Timeout(args.hang_after, connect=10.0)
    async with httpx.AsyncClient(base_url=server.url, timeout=timeout) as client:
        tasks = [
            asyncio.create_task(
                bounded(
                    recovery.what,
                    lambda r, w=w: w(client, r, mark, streaming),
                    args.request_cap,
                    args.hang_after,
                )
            )
            for w in in_flight
        ]
        try:
            async with asyncio.timeout(args.hang_after):
                await streaming.wait()
        except TimeoutError:
            recovery.details["nothing streamed before the strike"] += 1
        await asyncio.sleep(strike_after)
        recovery.killed = strike()
        mark.at = time.monotonic()
        print(f"  {recovery.what}: struck, {recovery.killed}", flush=True)
        successes: list[float] = []
        deadline = mark.at + RECOVERY_BOUND
        for _ in range(int(RECOVERY_BOUND / PROBE_EVERY)):
            r = await bounded(
                recovery.what, lambda r: probe(client, r, mark), args.request_cap, args.hang_after
            )
            recovery.probes[r.outcome] += 1
            if r.detail:
                recovery.details[f"probe: {r.outcome}: {r.detail}"] += 1
            if r.outcome == OK and r.done is not None:
                successes.append(r.done)
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(PROBE_EVERY)
        print(f"  {recovery.what}: probes {dict(recovery.probes)}", flush=True)
        done = await asyncio.gather(*tasks)
    recovery.rss_after_mb = sample(server, 0.0).rss_mb
    for r in done:
        recovery.in_flight[r.outcome] += 1
        if r.detail:
            recovery.details[f"in flight: {r.outcome}: {r.detail}"] += 1
        if r.outcome == OK and r.done is not None and r.after_mark is not None:
            successes.append(r.done)
    contents = [r.after_mark for r in done if r.after_mark is not None]
    assert mark.at is not None
    if contents:
        recovery.first_content_s = round(min(contents) - mark.at, 2)
    if successes:
        recovery.first_success_s = round(min(successes) - mark.at, 2)
    return recovery


def kill(pid: int | None, what: str) -> str:
    if pid is None:
        raise RuntimeError(f"no {what} process found under the server")
    os.kill(pid, signal.SIGKILL)
    return f"{what} (pid {pid})"


async def faults(server: Server, args: argparse.Namespace, wav: bytes) -> dict[str, Recovery]:
    found: dict[str, Recovery] = {}
    # Chat: long answers in flight, two generating and the rest in line; kill -9 the worker.
    chat_fault = Recovery("chat", "")

    def long_chat(client: httpx.AsyncClient, r: Result, mark: Mark, on: asyncio.Event) -> Any:
        question = f"Write a long story about a lighthouse keeper, number {id(r)}."
        return chat(client, r, question, 200, mark, on)

    def short_chat(client: httpx.AsyncClient, r: Result, mark: Mark) -> Any:
        return chat(client, r, "What is two plus two?", 8, mark)

    worker = child_running(server, WORKER_MODULE)
    await fault(
        server,
        args,
        chat_fault,
        [long_chat] * args.fault_streams,
        lambda: kill(worker, "llama.cpp worker"),
        short_chat,
    )
    new_worker = child_running(server, WORKER_MODULE)
    chat_fault.replaced_by = f"worker pid {new_worker}" if new_worker else "no worker running"
    found["chat"] = chat_fault

    # Speech: a long text being spoken; kill -9 the resident piper.
    speech_fault = Recovery("speech", "")

    def long_speech(client: httpx.AsyncClient, r: Result, mark: Mark, on: asyncio.Event) -> Any:
        return speak(client, r, LONG_SPEECH, mark, on)

    def short_speech(client: httpx.AsyncClient, r: Result, mark: Mark) -> Any:
        return speak(client, r, SAY, mark)

    await fault(
        server,
        args,
        speech_fault,
        [long_speech],
        lambda: kill(child_running(server, "piper", "--length-scale"), "piper"),
        short_speech,
    )
    piper = child_running(server, "piper", "--length-scale")
    speech_fault.replaced_by = f"piper pid {piper}" if piper else "no piper running"
    found["speech"] = speech_fault

    # Transcription: Whisper has no process of its own (it runs in the server's); a client
    # leaves in the middle of a long transcription instead.
    whisper_children = [p for p in children(server.pid) if "whisper" in command_line(p)]
    transcription_fault = Recovery("transcription", "")
    long_wav = repeat_wav(wav, 60.0)

    def long_transcription(
        client: httpx.AsyncClient, r: Result, mark: Mark, on: asyncio.Event
    ) -> Any:
        async def work() -> Result:
            left = await transcribe(client, r, long_wav, mark, leave_after_first=True)
            on.set()  # the "strike" is the client gone at its first delta
            return left

        return work()

    def leave() -> str:
        return "none (Whisper runs in the server process): client gone mid-transcription" + (
            f"; children named whisper: {whisper_children}" if whisper_children else ""
        )

    def short_transcription(client: httpx.AsyncClient, r: Result, mark: Mark) -> Any:
        return transcribe(client, r, wav, mark)

    await fault(
        server,
        args,
        transcription_fault,
        [long_transcription],
        leave,
        short_transcription,
        strike_after=0.0,
    )
    found["transcription"] = transcription_fault
    return found


def repeat_wav(wav: bytes, seconds: float) -> bytes:
    """The WAV's audio repeated (with half a second of silence between) to about `seconds`."""
    with wave.open(io.BytesIO(wav), "rb") as w:
        params = w.getparams()
        frames = w.readframes(w.getnframes())
    gap = b"\0" * (params.sampwidth * params.nchannels * params.framerate // 2)
    one = frames + gap
    times = max(1, int(seconds * params.framerate * params.sampwidth / len(one)))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setparams(params)
        w.writeframes(one * times)
    return out.getvalue()


# -- putting it together ------------------------------------------------------------------------


async def warm_up(server: Server, args: argparse.Namespace) -> bytes:
    """One request of each kind (the model, piper and Whisper load); the WAV to transcribe."""
    timeout = httpx.Timeout(args.hang_after, connect=10.0)
    async with httpx.AsyncClient(base_url=server.url, timeout=timeout) as client:
        for _ in range(60):
            r = await bounded("chat", lambda r: chat(client, r, "Hello!", 8), 120, args.hang_after)
            if r.outcome == OK:
                break
            await asyncio.sleep(1)
        else:
            raise RuntimeError(f"no chat answer at start: {r.outcome} {r.detail}")
        body = {"model": "tts-1", "voice": "alloy", "input": SAY, "response_format": "wav"}
        response = await client.post("/v1/audio/speech", json=body)
        if response.status_code != 200:
            raise RuntimeError(f"speech at start: HTTP {response.status_code} {response.text}")
        wav = response.content
        r = await bounded("transcription", lambda r: transcribe(client, r, wav), 120, 60)
        if r.outcome != OK:
            raise RuntimeError(f"transcription at start: {r.outcome} {r.detail}")
    return wav


async def measure(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    ModelStore(home, install_missing=False).pull_packaged(MODEL)
    with running_server(home) as server:
        idle = sample(server, time.monotonic())
        wav = await warm_up(server, args)
        cpu = CpuWatch(home)
        others_before = await wait_quiet(cpu, args.quiet_wait)
        print(f"server up (pid {server.pid}); soaking for {args.seconds:.0f} s...", flush=True)
        soaked = await soak(server, args, wav, cpu)
        soaked["others_cpu_share_before"] = others_before
        print("faults...", flush=True)
        recoveries = await faults(server, args, wav)
        after = sample(server, time.monotonic())
        log = server.log.read_text(errors="replace")
    return {
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "clients": args.clients,
            "seconds": args.seconds,
            "max_tokens": args.max_tokens,
            "hang_after": args.hang_after,
            "model": MODEL,
        },
        "idle_rss_mb": idle.rss_mb,
        "soak": soaked,
        "faults": {k: v.summary() for k, v in recoveries.items()},
        "after_faults": after.__dict__,
        "hangs": soaked["hangs"] + sum(v.hangs for v in recoveries.values()),
        "not_recovered": [k for k, v in recoveries.items() if not v.recovered],
        "server_log": {
            "tracebacks": log.count("Traceback"),
            "error_lines": sum(1 for line in log.splitlines() if line.startswith("ERROR")),
        },
    }


def report(results: dict[str, Any]) -> None:
    s, m = results["settings"], results["machine"]
    soaked = results["soak"]
    print()
    print(
        f"machine: {m['cores']} cores, {m['platform']}, Python {m['python']}; model {s['model']}; "
        f"{s['clients']} chat clients + 1 transcribing + 1 speaking for {soaked['seconds']:.0f} s"
    )
    print()
    head = f"{'kind':<14}" + "".join(f" | {o:>11}" for o in OUTCOMES)
    print(head)
    print("-" * len(head))
    for kind in KINDS:
        counts = soaked["outcomes"][kind]
        print(f"{kind:<14}" + "".join(f" | {counts[o]:>11}" for o in OUTCOMES))
    print(
        f"chat: {soaked['chat_tokens_per_s']} tokens/s, time to first token p50 "
        f"{soaked['chat_ttft_p50_s']} s, p95 {soaked['chat_ttft_p95_s']} s (queue included); "
        f"{soaked['retry_after_slept_s']:.0f} client-seconds slept on Retry-After"
    )
    others = soaked["others_cpu_share"]
    before = soaked["others_cpu_share_before"]
    print(
        f"other people's processes used {'?' if others is None else f'{others:.0%}'} of the "
        f"machine's CPU meanwhile ({'?' if before is None else f'{before:.0%}'} just before); "
        f"load average {soaked['load_average'][0]} at the start, "
        f"{soaked['load_average'][1]} at the end"
    )
    for detail, n in soaked["details"].items():
        print(f"  {n:>5} x {detail}")
    mem = soaked["memory"]
    print()
    print(f"server process (idle after start: {results['idle_rss_mb']} MB resident)")
    print(f"{'when':<14} | {'at s':>6} | {'RSS MB':>7} | {'files':>5} | {'threads':>7} | worker MB")
    for when in ("start", "middle", "end"):
        x = mem[when]
        print(
            f"{when:<14} | {x['at']:>6} | {x['rss_mb']:>7} | {x['fds']:>5} | {x['threads']:>7} | "
            f"{x['worker_rss_mb']}"
        )
    a = results["after_faults"]
    print(
        f"{'after faults':<14} | {'':>6} | {a['rss_mb']:>7} | {a['fds']:>5} | {a['threads']:>7} | "
        f"{a['worker_rss_mb']}"
    )
    growth = mem["end"]["rss_mb"] - mem["start"]["rss_mb"]
    print(
        f"RSS start -> end: {growth:+.1f} MB ({growth / mem['start']['rss_mb']:+.1%}); "
        f"max {mem['max_rss_mb']} MB"
    )
    print()
    print("faults (time from the kill to the first content / first complete success after it):")
    for kind, f in results["faults"].items():
        first = "-" if f["first_content_s"] is None else f"{f['first_content_s']:.2f} s"
        success = (
            "NOT RECOVERED" if f["first_success_s"] is None else f"{f['first_success_s']:.2f} s"
        )
        print(f"  {kind:<14} killed: {f['killed']}")
        print(
            f"  {'':<14} in flight {f['in_flight']}, probes {f['probes']}; "
            f"first content {first}, first success {success}; now: {f['replaced_by'] or '-'}; "
            f"server RSS after: {f['rss_after_mb']} MB"
        )
        for detail, n in f["details"].items():
            print(f"  {'':<14}   {n} x {detail}")
    log = results["server_log"]
    print()
    print(f"server log: {log['tracebacks']} tracebacks, {log['error_lines']} ERROR lines")
    verdict = "PASS" if not results["hangs"] and not results["not_recovered"] else "FAIL"
    print(
        f"hangs: {results['hangs']} (must be 0); not recovered: "
        f"{results['not_recovered'] or 'none'} -> {verdict}"
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=300.0, help="length of the soak")
    p.add_argument("--clients", type=int, default=64, help="concurrent streaming chat clients")
    p.add_argument("--max-tokens", type=int, default=48, help="max_tokens of each chat request")
    p.add_argument(
        "--hang-after",
        type=float,
        default=60.0,
        help="seconds without any byte from the server after which a request counts as hung",
    )
    p.add_argument(
        "--request-cap",
        type=float,
        default=600.0,
        help="seconds after which a request still streaming counts as hung",
    )
    p.add_argument("--audio-pause", type=float, default=3.0, help="seconds between audio requests")
    p.add_argument(
        "--fault-streams", type=int, default=6, help="chat answers in flight at the kill"
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=180.0,
        help="seconds to wait for other processes to go quiet before the soak",
    )
    p.add_argument("--home", type=Path, help="IAFORALL_HOME to use (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    with contextlib.ExitStack() as stack:
        home = args.home or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        results = asyncio.run(measure(args, home))
    report(results)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 1 if results["hangs"] or results["not_recovered"] else 0


if __name__ == "__main__":
    sys.exit(main())
