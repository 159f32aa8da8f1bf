"""`iaforall ps`: what the running server holds in memory and on its cores, and until when."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from iaforall.cli.client import running_server, server_url
from iaforall.settings import Settings


def until(model: dict[str, Any], now: float | None = None) -> str:
    """When an idle model unloads: "forever", "after use" or "4 min (at 12:05:00)"."""
    expires, keep = model.get("expires_in"), model.get("keep_alive")
    if keep is not None and keep < 0:
        return "forever"
    if expires is None:
        return "in use" if keep is None else f"in use, then {_span(keep)}"
    at = time.strftime("%H:%M:%S", time.localtime((time.time() if now is None else now) + expires))
    return f"{_span(expires)} (at {at})"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cpu_line(cpu: dict[str, Any]) -> str:
    """The CPU budget and what holds it: "CPU budget: 2 of 2 cores in use (tiny 2 threads,
    1 job)"."""
    holders = [
        f"{h['name']} {_count(h['threads'], 'thread')}, {_count(h['jobs'], 'job')}"
        for h in cpu.get("holders", [])
    ]
    line = f"CPU budget: {cpu.get('in_use', 0)} of {cpu['cores']} cores in use"
    if holders:
        line += f" ({'; '.join(holders)})"
    others = cpu.get("others_busy")
    if others:  # the budget follows the machine: what other programs take is left to them
        line += f"; other programs keep {others:.1f} cores busy"
    restarts = cpu.get("worker_restarts")
    if restarts:  # chat workers restarted with the threads the budget gave them
        line += f"; chat workers restarted {_count(restarts, 'time')} to fit it"
    return line


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def ps(settings: Settings) -> int:
    health = running_server(settings)
    out = Console(highlight=False)
    if health is None:
        Console(stderr=True).print(
            f"No IAForAll server answers at {server_url(settings)}. Start one with "
            "`iaforall serve`.",
            markup=False,
        )
        return 1
    if "memory_budget" not in health:  # a server with accounts shows them to administrators only
        Console(stderr=True).print(
            "This server shows what it runs to administrators only: set IAFORALL_API_KEY to an "
            "administrator's key (`iaforall keys create --user NAME`).",
            markup=False,
        )
        return 1
    models = health.get("models", [])
    cpu = health.get("cpu_budget") or {}
    if cpu.get("cores"):
        out.print(cpu_line(cpu), markup=False)
    budget = health.get("memory_budget") or {}
    if budget.get("bytes"):
        out.print(
            f"Memory budget: {decimal(budget.get('used', 0))} used of {decimal(budget['bytes'])}",
            markup=False,
        )
    if not models:
        out.print("No model is loaded.", markup=False)
        return 0
    table = Table(box=None, header_style="bold")
    for column in (
        "NAME",
        "STATE",
        "SIZE",
        "RSS",
        "THREADS",
        "SLOTS BUSY",
        "QUEUED",
        "UNLOADS IN",
    ):
        table.add_column(column)
    for m in models:
        size = decimal(m["budgeted_bytes"]) if m.get("budgeted_bytes") else "-"
        memory = decimal(m["memory_bytes"]) if m.get("memory_bytes") else "-"
        busy = m.get("busy_slots")
        state, slots = m["state"], m["slots"]
        if replicas := m.get("replicas"):  # on a cluster: `iaforall cluster status` for more
            state += f", {replicas['running']}/{replicas['target']} replicas"
            busy, slots = m.get("running"), slots * replicas["running"]
        table.add_row(
            m["name"],
            state,
            size,
            memory,
            str(m.get("threads", "-")),
            f"{busy if busy is not None else '?'}/{slots}",
            str(m.get("queued", 0)),
            until(m),
        )
    out.print(table)
    return 0
