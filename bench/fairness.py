"""Fair scheduling between users on the real engine: weighted fair queuing vs. FIFO.

    .venv/bin/python bench/fairness.py [--model smollm2:135m] [--seconds 60] [--json]

A benchmark, not a test: it prints its figures and exits 0 whatever they are. It drives the
real `Scheduler` and `Dispatcher` in this process, in front of the real llama.cpp worker (the
same engine the server uses), so users need no accounts or API identities. Both policies share
the one loaded engine and take turns; nothing else generates meanwhile.

1. **Time to first token of a light user under a flood.** User A keeps 16 long requests in
   flight (as soon as one ends, A sends another); user B sends one short request every few
   seconds. B's median time to first token (TTFT) is compared with B alone on the idle engine.
   Target (the issue): fair median <= 2 x unloaded + one slot's decode time (the time one of A's
   long answers holds a slot). FIFO makes B wait behind A's whole queue.
2. **Jain's fairness index** over the users' token throughput at saturation, equal weights:
   four users flood with 8, 4, 2 and 1 requests in flight. Index = (sum x)^2 / (n * sum x^2),
   1 = perfectly even. Target >= 0.95. FIFO serves them in proportion to how hard they push.
3. **Expected wait**: the wait announced to B on arrival against the wait B really had.
4. **Preemption** (`fair+preempt`, scheduling/preempt.py): the same flood with running
   generations paused for B. Target (issue 17): B's median TTFT <= 1.5 x unloaded, total
   throughput (everyone's tokens/s while B asks) within 5 % of `fair` without preemption; it
   reports how many of A's answers were paused and for how long. And the floor under it
   (`slot free`): A keeps one request fewer than the slots in flight, so B never waits and
   nothing is paused; B's TTFT there is the hardware's share of the gap (B's prompt and first
   token computed in the same batch as A's answers), what no pause can go below.

Requests are chats (the ones a pause can resume token for token). Users are plain ids given to
the scheduler, as accounts' keys give them in the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iaforall.core.events import Chunk, QueueUpdate
from iaforall.core.types import ChatRequest, ModelId, Sampling, UserId
from iaforall.engines.llamacpp.factory import llamacpp_factory
from iaforall.engines.pool import EnginePool
from iaforall.models.store import ModelStore
from iaforall.observability.metrics import Metrics
from iaforall.scheduling.dispatch import Dispatcher
from iaforall.scheduling.loop import Scheduler
from iaforall.scheduling.policy import Policy
from iaforall.settings import EngineSettings

COUNTING = "Count from 1 to 1000, separated by commas."  # long, steady
QUESTION = "What is the capital of France?"
TARGET_FAIRNESS = 0.95
TARGET_PREEMPT_TTFT = 1.5  # x unloaded
TARGET_THROUGHPUT = 0.95  # of fair without preemption
POLICIES: tuple[Policy, ...] = ("fair", "fifo")
# The light user's runs: a policy, and whether running generations may be paused.
RUNS: tuple[tuple[str, Policy, bool], ...] = (
    ("fair", "fair", False),
    ("fair+preempt", "fair", True),
    ("fifo", "fifo", False),
    ("slot free", "fair", False),
)
# A run where A keeps one request fewer than the slots in flight: B never waits and nothing is
# paused, so B's TTFT there is what the hardware gives a newcomer whose answer shares the batch
# with A's others: the floor under preemption's, whatever the scheduler does.
SLOT_FREE = "slot free"


@dataclass
class Timed:
    """One request as its user saw it."""

    user: str
    submitted: float
    position: int = 0  # on arrival
    announced_wait: float = 0.0  # expected on arrival, seconds
    granted: float | None = None
    complete: bool = False
    first: float | None = None
    last: float | None = None
    tokens: list[float] = field(default_factory=list)  # arrival time of each chunk with text
    pauses: list[float] = field(default_factory=list)  # how long each pause lasted
    paused_at: float | None = None

    @property
    def ttft(self) -> float:
        assert self.first is not None
        return self.first - self.submitted

    @property
    def waited(self) -> float:
        assert self.granted is not None
        return self.granted - self.submitted


class Bench:
    def __init__(self, args: argparse.Namespace, pool: EnginePool, model: ModelId) -> None:
        self.args = args
        self.pool = pool
        self.model = model

    def dispatcher(self, policy: Policy, *, preempt: bool = False) -> Dispatcher:
        scheduler = Scheduler(
            slots_for=self.pool.slots_for,
            max_queue=256,
            queue_timeout=3600,
            max_active_models=1,
            policy=policy,
            preempt=preempt,
        )
        return Dispatcher(scheduler, self.pool, Metrics(), request_timeout=3600)

    def request(self, user: str, *, long: bool) -> ChatRequest:
        return ChatRequest(
            model=self.model,
            messages=({"role": "user", "content": COUNTING if long else QUESTION},),
            user=UserId(user),
            sampling=Sampling(
                max_tokens=self.args.long_tokens if long else self.args.short_tokens,
                temperature=0,
            ),
            stream=True,
        )

    async def run(
        self, dispatcher: Dispatcher, user: str, *, long: bool, sink: list[Timed] | None = None
    ) -> Timed:
        timed = Timed(user, time.perf_counter())
        if sink is not None:
            sink.append(timed)  # kept even if it is cancelled halfway
        admitted = False
        async with contextlib.aclosing(
            dispatcher.stream_queued(self.request(user, long=long))
        ) as items:
            async for item in items:
                now = time.perf_counter()
                if isinstance(item, QueueUpdate):
                    if item.paused and timed.paused_at is None:
                        timed.paused_at = now
                    if not admitted:
                        timed.position, timed.announced_wait = item.position, item.wait_s
                        admitted = True
                    if item.position == 0:
                        timed.granted = now
                elif isinstance(item, Chunk) and not item.usage_only:
                    if timed.paused_at is not None:
                        timed.pauses.append(now - timed.paused_at)
                        timed.paused_at = None
                    if timed.first is None:
                        timed.first = now
                    timed.last = now
                    timed.tokens.append(now)
        timed.complete = True
        return timed


class Flood:
    """A user keeping `in_flight` long requests going: each sent as soon as one ends."""

    def __init__(self, bench: Bench, dispatcher: Dispatcher, user: str, in_flight: int) -> None:
        self.requests: list[Timed] = []

        async def lane() -> None:
            while True:
                await bench.run(dispatcher, user, long=True, sink=self.requests)

        self._lanes = [asyncio.create_task(lane()) for _ in range(in_flight)]

    async def stop(self) -> list[Timed]:
        for task in self._lanes:
            task.cancel()
        await asyncio.gather(*self._lanes, return_exceptions=True)
        return self.requests


def _busy_ticks() -> tuple[int, int] | None:
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:  # not Linux: no guard
        return None
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


async def wait_quiet(patience: float, quiet: float = 0.15) -> float | None:
    """Wait (up to `patience` s) until the machine is nearly idle: on a shared machine, other
    people's work would slow the engine and blur every figure. The busy share last seen."""
    deadline = time.monotonic() + patience
    warned = False
    while True:
        a = _busy_ticks()
        await asyncio.sleep(1)
        b = _busy_ticks()
        if a is None or b is None or b[1] <= a[1]:
            return None
        share = (b[0] - a[0]) / (b[1] - a[1])
        if share <= quiet or time.monotonic() > deadline:
            return share
        if not warned:
            print(f"  waiting for other processes ({share:.0%} CPU) to go quiet...", flush=True)
            warned = True


def jain(values: Sequence[float]) -> float:
    total = sum(values)
    squares = sum(v * v for v in values)
    return total * total / (len(values) * squares) if squares else 0.0


def median_ms(values: Sequence[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


async def light_user_under_flood(bench: Bench) -> dict[str, Any]:
    args = bench.args
    await wait_quiet(args.quiet_timeout)
    alone = bench.dispatcher("fair")
    for _ in range(2):  # warm-up: the prompt cache and the worker's first requests
        await bench.run(alone, "B", long=False)
        await bench.run(alone, "A", long=True)
    unloaded = [
        (await bench.run(alone, "B", long=False)).ttft for _ in range(args.unloaded_samples)
    ]
    result: dict[str, Any] = {"unloaded_ttft_ms": median_ms(unloaded)}
    for name, policy, preempt in RUNS:
        busy = await wait_quiet(args.quiet_timeout)
        dispatcher = bench.dispatcher(policy, preempt=preempt)
        in_flight = (
            max(1, bench.pool.slots_for(bench.model) - 1) if name == SLOT_FREE else args.flood
        )
        flood = Flood(bench, dispatcher, "A", in_flight)
        await asyncio.sleep(args.ramp)  # A's flood fills the slots and the queue first
        light: list[asyncio.Task[Timed]] = []
        window_start = time.perf_counter()
        cpu_before = _busy_ticks()
        for _ in range(args.light_requests):
            light.append(asyncio.create_task(bench.run(dispatcher, "B", long=False)))
            await asyncio.sleep(args.every)
        b = await asyncio.gather(*light)  # A floods until B's last answer came
        window = (window_start, time.perf_counter())
        cpu_after = _busy_ticks()
        everyone = await flood.stop()
        a = [x for x in everyone if x.complete]
        decodes = [x.last - x.first for x in a if x.first and x.last]
        slot_decode = statistics.median(decodes) if decodes else 0.0  # none ended: busy machine
        ttfts = [x.ttft for x in b]
        announced = [(x.announced_wait, x.waited) for x in b if x.position > 0]
        tokens = sum(1 for x in everyone + b for at in x.tokens if window[0] <= at < window[1])
        pauses = [p for x in everyone for p in x.pauses]
        result[name] = {
            "b_requests": len(b),
            "b_ttft_p50_ms": median_ms(ttfts),
            "b_ttft_max_ms": round(max(ttfts) * 1000, 1),
            "b_position_on_arrival_p50": statistics.median(x.position for x in b),
            "a_requests": len(a),
            "slot_decode_ms": median_ms([slot_decode]),
            "announced_wait_p50_s": round(statistics.median(w for w, _ in announced), 2)
            if announced
            else None,
            "actual_wait_p50_s": round(statistics.median(w for _, w in announced), 2)
            if announced
            else None,
            "tokens_per_s": round(tokens / (window[1] - window[0]), 1),
            "a_paused": sum(1 for x in everyone if x.pauses),
            "pauses": len(pauses),
            "pause_p50_ms": median_ms(pauses) if pauses else None,
            "pause_max_ms": round(max(pauses) * 1000, 1) if pauses else None,
            "machine_busy_during": _share(cpu_before, cpu_after),
        }
        budget = 2 * statistics.median(unloaded) + slot_decode
        if preempt or name == SLOT_FREE:
            budget = TARGET_PREEMPT_TTFT * statistics.median(unloaded)
        result[name]["target_ms"] = round(budget * 1000, 1)
        result[name]["machine_busy_before"] = busy
        result[name]["meets_target"] = statistics.median(ttfts) <= budget
        print(f"  light user under flood, {name}: {result[name]}", flush=True)
    fair, preempted = result["fair"]["tokens_per_s"], result["fair+preempt"]["tokens_per_s"]
    result["preempt_throughput_ratio"] = round(preempted / fair, 3) if fair else None
    for key, name in (("preempt_ttft_ratio", "fair+preempt"), ("slot_free_ttft_ratio", SLOT_FREE)):
        result[key] = round(result[name]["b_ttft_p50_ms"] / result["unloaded_ttft_ms"], 2)
    free = result[SLOT_FREE]["tokens_per_s"]
    result["slot_free_throughput_ratio"] = round(free / fair, 3) if fair else None
    return result


def _share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The machine's busy share between two readings (this process included)."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 2)


async def fairness_at_saturation(bench: Bench) -> dict[str, Any]:
    args = bench.args
    pressures = {"U1": 8, "U2": 4, "U3": 2, "U4": 1}  # requests each keeps in flight
    result: dict[str, Any] = {"in_flight": pressures}
    for policy in POLICIES:
        busy = await wait_quiet(args.quiet_timeout)
        dispatcher = bench.dispatcher(policy)
        start = time.perf_counter()
        window = (start + args.warm, start + args.warm + args.seconds)
        floods = [Flood(bench, dispatcher, u, n) for u, n in pressures.items()]
        await asyncio.sleep(window[1] - time.perf_counter())
        tokens: Counter[str] = Counter()
        for flood in floods:
            for timed in await flood.stop():
                tokens[timed.user] += sum(1 for at in timed.tokens if window[0] <= at < window[1])
        per_s = {u: round(tokens[u] / args.seconds, 1) for u in pressures}
        result[policy] = {
            "tokens_per_s": per_s,
            "jain": round(jain(list(per_s.values())), 3),
            "machine_busy_before": busy,
        }
        print(f"  four users flooding, {policy}: {result[policy]}", flush=True)
    return result


def report(facts: dict[str, Any], light: dict[str, Any], even: dict[str, Any]) -> None:
    print()
    print(
        f"machine: {facts['cores']} cores, {facts['platform']}, Python {facts['python']}; "
        f"model {facts['model']}, {facts['slots']} slots, {facts['threads']} threads"
    )
    print(
        f"A keeps {facts['flood']} long requests ({facts['long_tokens']} tokens each) in flight; "
        f"B sends {facts['light_requests']} of {facts['short_tokens']} tokens, one every "
        f"{facts['every']:.0f} s; the four users flood for {facts['seconds']:.0f} s"
    )
    print()
    print(f"B's TTFT unloaded (p50): {light['unloaded_ttft_ms']:.1f} ms")
    head = (
        f"{'policy':<12} | {'B TTFT p50':>11} | {'B TTFT max':>11} | {'one slot decode':>15} | "
        f"{'target':>10} | {'verdict':<7} | {'wait announced / actual (p50)':>29}"
    )
    print(head)
    print("-" * len(head))
    for policy, _, _ in RUNS:
        r = light[policy]
        waits = (
            f"{r['announced_wait_p50_s']:.1f} s / {r['actual_wait_p50_s']:.1f} s"
            if r["announced_wait_p50_s"] is not None
            else "-"
        )
        print(
            f"{policy:<12} | {r['b_ttft_p50_ms']:>8.0f} ms | {r['b_ttft_max_ms']:>8.0f} ms | "
            f"{r['slot_decode_ms']:>12.0f} ms | {r['target_ms']:>7.0f} ms | "
            f"{'PASS' if r['meets_target'] else 'FAIL':<7} | {waits:>29}"
        )
    print()
    for policy, _, _ in RUNS:
        r = light[policy]
        print(
            f"  {policy:<12} everyone's tokens/s while B asks: {r['tokens_per_s']}; machine "
            f"busy {r['machine_busy_during']}; A's answers paused: {r['a_paused']} "
            f"({r['pauses']} pauses, p50 {r['pause_p50_ms']} ms, max {r['pause_max_ms']} ms)"
        )
    ratio = light["preempt_throughput_ratio"]
    print(
        f"preemption: B's TTFT {light['preempt_ttft_ratio']} x unloaded (target <= "
        f"{TARGET_PREEMPT_TTFT}); throughput {ratio} x fair without it (target >= "
        f"{TARGET_THROUGHPUT}) {'PASS' if ratio and ratio >= TARGET_THROUGHPUT else 'FAIL'}"
    )
    print(
        f"the hardware's floor: with a slot free (A keeps {facts['slots'] - 1} in flight), B's "
        f"TTFT is {light['slot_free_ttft_ratio']} x unloaded, everyone's throughput "
        f"{light['slot_free_throughput_ratio']} x fair's: what no pause can go below, B's "
        "answer sharing the batch with A's"
    )
    if not even:
        return
    print()
    print(f"four users flooding with {even['in_flight']} requests in flight, equal weights:")
    for policy in POLICIES:
        r = even[policy]
        ok = r["jain"] >= TARGET_FAIRNESS
        verdict = "PASS" if ok else "FAIL"
        if policy == "fifo":
            verdict = "(baseline)"
        print(
            f"  {policy:<5} tokens/s per user {r['tokens_per_s']}; Jain's index {r['jain']:.3f}"
            f" {verdict}"
        )


async def measure(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    info = ModelStore(home, install_missing=False).pull_packaged(args.model)
    settings = EngineSettings(
        threads=args.threads, parallel=args.parallel, context_length=2048, keep_alive=-1
    )
    pool = EnginePool(
        ModelStore(home, install_missing=False),
        llamacpp_factory(settings, home / "logs", read_timeout=3600),
        slots=settings.parallel,
        context_length=settings.context_length,
        keep_alive=settings.keep_alive,
    )
    try:
        await pool.load(info.name)
        bench = Bench(args, pool, ModelId(info.name))
        facts = {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "model": info.name,
            "slots": settings.parallel,
            "threads": settings.resolved_threads(),
            "flood": args.flood,
            "long_tokens": args.long_tokens,
            "short_tokens": args.short_tokens,
            "seconds": args.seconds,
            "every": args.every,
            "light_requests": args.light_requests,
        }
        light = await light_user_under_flood(bench)
        even = {} if args.light_only else await fairness_at_saturation(bench)
    finally:
        await pool.close()
    report(facts, light, even)
    return {"machine": facts, "light_user": light, "fairness": even}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--model", default="smollm2:135m")
    p.add_argument("--home", type=Path, help="IAFORALL_HOME to use (default: a temp dir)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all available)")
    p.add_argument("--parallel", type=int, default=2, help="slots (the server's default)")
    p.add_argument("--flood", type=int, default=16, help="requests A keeps in flight")
    p.add_argument("--long-tokens", type=int, default=256, help="tokens per long request")
    p.add_argument("--short-tokens", type=int, default=8, help="tokens per short request")
    p.add_argument("--seconds", type=float, default=60.0, help="measured window at saturation")
    p.add_argument(
        "--warm",
        type=float,
        default=20.0,
        help="seconds of saturation before the window (the line settles into its steady order)",
    )
    p.add_argument("--light-requests", type=int, default=10, help="B's requests under flood")
    p.add_argument("--every", type=float, default=3.0, help="seconds between B's requests")
    p.add_argument("--ramp", type=float, default=3.0, help="seconds of flood before measuring")
    p.add_argument("--unloaded-samples", type=int, default=10)
    p.add_argument(
        "--quiet-timeout", type=float, default=300.0, help="seconds to wait for an idle machine"
    )
    p.add_argument(
        "--light-only", action="store_true", help="only the light user under a flood (1, 3, 4)"
    )
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    with contextlib.ExitStack() as stack:
        home = args.home or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        results = asyncio.run(measure(args, home))
        if args.json:
            print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
