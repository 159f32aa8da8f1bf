"""XLSX -> one Markdown table per sheet, streamed row by row within the text limit.

openpyxl's read-only mode parses a sheet as it goes, so a large workbook is refused at the limit
having spent little (markitdown's pandas path loads every sheet whole first: 2 GB and two
minutes for a 4 MB workbook of 100,000 rows). Every cell read, empty or not, counts against the
limit, so rows padded to thousands of empty columns cannot run long either.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from iaforall.knowledge.document import Section
from iaforall.knowledge.errors import (
    DocumentRefused,
    DocumentTooLarge,
    UnreadableDocument,
    too_much_text,
)
from iaforall.knowledge.limits import DocumentLimits


def sheet_sections(path: Path, limits: DocumentLimits) -> list[Section]:
    from openpyxl import load_workbook  # type: ignore[import-untyped]

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except DocumentRefused:
        raise
    except Exception as exc:  # zipfile, lxml, openpyxl: each its own kinds
        raise _corrupt(exc) from None
    try:
        if len(workbook.worksheets) > limits.max_pages:
            raise DocumentTooLarge(
                f"The workbook has {len(workbook.worksheets)} sheets; at most "
                f"{limits.max_pages} are read.",
                code="too_many_pages",
            )
        budget = [limits.max_chars]
        return [
            Section(f"sheet {sheet.title}", _table(sheet, budget, limits), headings=(sheet.title,))
            for sheet in workbook.worksheets
        ]
    except DocumentRefused:
        raise
    except Exception as exc:
        raise _corrupt(exc) from None
    finally:
        workbook.close()


def _table(sheet: Any, budget: list[int], limits: DocumentLimits) -> str:
    rows: list[list[str]] = []
    for values in sheet.iter_rows(values_only=True):
        budget[0] -= len(values)
        cells = [_cell(value) for value in values]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        budget[0] -= sum(len(cell) for cell in cells)
        if budget[0] < 0:
            raise too_much_text(limits)
        rows.append(cells)
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    lines = [_row(rows[0], width), "|" + " --- |" * width]
    lines += [_row(row, width) for row in rows[1:]]
    return "\n".join(lines)


def _row(cells: list[str], width: int) -> str:
    return "| " + " | ".join(cells + [""] * (width - len(cells))) + " |"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, dt.datetime) and value.time() == dt.time():
        value = value.date()
    text = value.isoformat() if isinstance(value, dt.date | dt.time) else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _corrupt(exc: Exception) -> UnreadableDocument:
    return UnreadableDocument(
        f"The XLSX workbook is damaged and cannot be read ({type(exc).__name__}: {exc}).",
        code="corrupt_document",
    )
