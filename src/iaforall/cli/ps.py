"""`iaforall ps`: what the running server holds in memory."""

from __future__ import annotations

from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from iaforall.cli.client import running_server, server_url
from iaforall.settings import Settings


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
    models = health.get("models", [])
    if not models:
        out.print("No model is loaded.", markup=False)
        return 0
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "STATE", "MEMORY", "SLOTS BUSY", "QUEUED", "UNLOADS IN"):
        table.add_column(column)
    for m in models:
        memory = decimal(m["memory_bytes"]) if m.get("memory_bytes") else "-"
        busy = m.get("busy_slots")
        expires = m.get("expires_in")
        table.add_row(
            m["name"],
            m["state"],
            memory,
            f"{busy if busy is not None else '?'}/{m['slots']}",
            str(m.get("queued", 0)),
            "in use" if expires is None else f"{expires:.0f} s",
        )
    out.print(table)
    return 0
