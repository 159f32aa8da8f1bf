"""Other programs on the machine: how many of our cores they keep busy, and the CPU budget that
leaves us.

Two readings of `/proc/stat` (the time our cores spent busy) and of our processes' CPU time
(this server and everything it started: llama.cpp workers, the document reader, piper) a few
seconds apart give the cores another program kept busy meanwhile. When it keeps about a core
busy, the budget shrinks by one (the scheduler then starts jobs on the cores actually free:
Whisper on one thread, a voice beside nothing), and it grows back once the machine is quiet.
The decisions are pure functions over the readings (table-tested); `follow_forever` is the
small loop that reads and applies them, used when `IAFORALL_CPU_CORES` is left to the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from iaforall.scheduling.loop import Scheduler

log = logging.getLogger(__name__)

EVERY_S = 1.0  # between readings (the budget moves on two that agree: 1-2 s)
TAKEN = 0.5  # another program's load on a core, from which that core is not ours
QUIET = 0.25  # a core given back only when the others' load falls this far below it


@dataclass(frozen=True, slots=True)
class Reading:
    """One look at the machine, in clock ticks since boot: our cores' busy and total time, and
    the CPU time of our processes."""

    busy: int
    total: int
    ours: int
    cores: int  # how many of the machine's cores are ours (what busy and total cover)


def cores_busy(stat: str, cpus: Collection[int]) -> tuple[int, int]:
    """(busy, total) ticks of the `cpus` in a `/proc/stat` text: total counts user, nice,
    system, idle, iowait, irq, softirq and steal; busy all but idle and iowait."""
    busy = total = 0
    for line in stat.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        ticks = [int(v) for v in rest.split()[:8]]
        ticks += [0] * (8 - len(ticks))
        total += sum(ticks)
        busy += sum(ticks) - ticks[3] - ticks[4]
    return busy, total


def process_ticks(stat: str) -> tuple[int, int]:
    """(parent pid, CPU ticks used by the process and its reaped children) from a
    `/proc/PID/stat` text (its name, in parentheses, may hold spaces)."""
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime fields 14-17.
    return int(fields[1]), sum(int(v) for v in fields[11:15])


def tree_ticks(processes: Mapping[int, tuple[int, int]], root: int) -> int:
    """The ticks of `root` and every process descended from it, from each process's (parent,
    ticks)."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in processes:
            continue
        seen.add(pid)
        total += processes[pid][1]
        todo.extend(children.get(pid, ()))
    return total


def foreign_cores(before: Reading, after: Reading) -> float:
    """The cores other programs kept busy between two readings (0 when unknown)."""
    total = after.total - before.total
    if total <= 0 or after.cores <= 0:
        return 0.0
    others = (after.busy - before.busy) - (after.ours - before.ours)
    return max(0.0, others / total * after.cores)


def budget_beside(cores: int, foreign: float, current: int, before: float | None = None) -> int:
    """The budget once other programs keep `foreign` cores busy: a core they load at
    `TAKEN` or more is theirs; it is given back one at a time, once their load is `QUIET`
    below what they were given (so a load near the line does not flap). With `before`, the
    reading before this one, both must agree: a burst of one reading (a program starting, a
    test run's imports) moves nothing, since each move may restart a chat worker. Never below
    one core."""
    taking = foreign if before is None else min(foreign, before)
    giving = foreign if before is None else max(foreign, before)
    given = cores - current  # cores left to others now
    wanted = min(cores - 1, math.floor(taking + (1 - TAKEN)))
    if wanted > given:
        return cores - wanted
    if given > 0 and giving <= given - 1 + QUIET:
        return current + 1
    return current


def read_machine(root: int, cpus: Collection[int], proc: Path = Path("/proc")) -> Reading:
    """A reading of this machine: our cores' time, and the CPU time of `root` and its
    descendants (processes gone meanwhile count in their parent's reaped-children time)."""
    busy, total = cores_busy((proc / "stat").read_text(), cpus)
    processes: dict[int, tuple[int, int]] = {}
    for entry in os.scandir(proc):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):  # gone, or unreadable
                processes[int(entry.name)] = process_ticks((Path(entry.path) / "stat").read_text())
    return Reading(busy, total, tree_ticks(processes, root), len(cpus))


@dataclass
class MachineLoad:
    """What the loop last saw, for /health and `iaforall ps`."""

    foreign: float = 0.0


async def follow_forever(
    scheduler: Scheduler,
    cores: int,
    read: Callable[[], Reading],
    seen: MachineLoad,
    *,
    every: float = EVERY_S,
) -> None:
    """Read the machine every `every` seconds and set the scheduler's budget beside the other
    programs' load (up to `cores`)."""
    before = await asyncio.to_thread(read)
    while True:
        await asyncio.sleep(every)
        try:
            after = await asyncio.to_thread(read)
        except OSError as exc:  # no /proc here: the budget stays as set
            log.warning("cannot read the machine's load (%s): the CPU budget stays", exc)
            return
        last, seen.foreign = seen.foreign, foreign_cores(before, after)
        budget = budget_beside(cores, seen.foreign, scheduler.cpu().cores, last)
        if budget != scheduler.cpu().cores:
            log.info(
                "other programs keep %.1f cores busy: the CPU budget is now %d of %d cores",
                seen.foreign,
                budget,
                cores,
            )
            scheduler.set_cpu_cores(budget)
        before = after
