"""`iaforall doctor`: what works here, what does not, why, and the command that fixes it.

It reads the settings and the store directly, so it works with or without a running server.
Exits 1 when something the default setup promises is missing or broken.
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from iaforall.observability.doctor import doctor as check_all
from iaforall.observability.doctor import failing
from iaforall.settings import Settings

MARK = {"ok": "[green]ok[/]", "missing": "[yellow]missing[/]", "broken": "[red]broken[/]"}


def doctor(settings: Settings, *, as_json: bool = False, deep: bool = False) -> int:
    rows = check_all(settings, deep=deep)
    bad = failing(rows)
    if as_json:
        report = {"ok": not bad, "capabilities": [row.as_dict() for row in rows]}
        print(json.dumps(report, indent=2))
        return 1 if bad else 0
    out = Console(highlight=False, soft_wrap=True)
    table = Table("Capability", "Status", "Why", "Fix", box=None, pad_edge=False)
    for row in rows:
        table.add_row(row.title, MARK[row.status], row.why, row.fix or "", end_section=False)
    out.print(table)
    if bad:
        out.print(f"\n{len(bad)} of {len(rows)} not working: run the command beside each.")
    return 1 if bad else 0
