"""XLSX -> one Markdown table per sheet, streamed row by row within the text limit.

openpyxl's read-only mode parses a sheet as it goes, so a large workbook is refused at the limit
having spent little (markitdown's pandas path loads every sheet whole first: 2 GB and two
minutes for a 4 MB workbook of 100,000 rows).

Only the rows and cells the sheet's XML holds are read. openpyxl's `iter_rows` yields every
missing row in between (a sheet without a <dimension> whose one cell is in row 1,048,576 costs a
million empty rows: a 23 KB workbook of 40 such sheets took 8.4 s), so we read through the
parser it uses itself, which yields the rows that are there. Bounds, each refused with its
reason: cells read per workbook (empty ones and rows count: they cost time), the last column
holding a value, and the text, padding of short rows included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iaforall.knowledge.document import Section, short_heading
from iaforall.knowledge.errors import (
    DocumentRefused,
    DocumentTooLarge,
    UnreadableDocument,
    too_much_text,
)
from iaforall.knowledge.limits import DocumentLimits

MAX_COLUMNS = 1024  # the last column a value may be in: a wider table is not text to search


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
        budget = _Budget(limits)
        return [
            Section(
                f"sheet {short_heading(sheet.title)}",
                _table(sheet, budget),
                headings=(short_heading(sheet.title),),
            )
            for sheet in workbook.worksheets
        ]
    except DocumentRefused:
        raise
    except Exception as exc:
        raise _corrupt(exc) from None
    finally:
        workbook.close()


@dataclass
class _Budget:
    """What is left to read of one workbook."""

    limits: DocumentLimits
    chars: int = 0
    cells: int = 0

    def __post_init__(self) -> None:
        self.chars, self.cells = self.limits.max_chars, self.limits.max_cells

    def spend(self, *, chars: int = 0, cells: int = 0) -> None:
        self.chars -= chars
        self.cells -= cells
        if self.chars < 0:
            raise too_much_text(self.limits)
        if self.cells < 0:
            raise DocumentTooLarge(
                f"The workbook holds more than {self.limits.max_cells:,} cells and rows "
                "(empty ones included), the most read from one workbook. Delete the unused "
                "rows and columns, or split it into smaller files.",
                code="too_many_cells",
            )


def _table(sheet: Any, budget: _Budget) -> str:
    rows: list[list[str]] = []
    for cells in _rows_present(sheet):
        budget.spend(cells=1 + len(cells))
        values = {c["column"]: text for c in cells if (text := _cell(c["value"]))}
        if not values:
            continue
        last = max(values)
        if last > MAX_COLUMNS:
            raise DocumentTooLarge(
                f"The sheet '{short_heading(sheet.title)}' has a value in column {last:,}; at "
                f"most {MAX_COLUMNS:,} columns are read. Delete what lies beyond, or move it "
                "to another sheet.",
                code="too_many_columns",
            )
        row = [values.get(column, "") for column in range(1, last + 1)]
        budget.spend(chars=len(row) + sum(len(cell) for cell in row))
        rows.append(row)
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    budget.spend(chars=sum(width - len(row) for row in rows))  # the padding of short rows
    lines = [_row(rows[0], width), "|" + " --- |" * width]
    lines += [_row(row, width) for row in rows[1:]]
    return "\n".join(lines)


def _rows_present(sheet: Any) -> Iterator[list[dict[str, Any]]]:
    """The cells of each row the sheet's XML holds (openpyxl's read-only sheet reads with the
    same parser, then fills the gaps between rows and columns)."""
    from openpyxl.worksheet._reader import WorkSheetParser  # type: ignore[import-untyped]

    workbook = sheet.parent
    with sheet._get_source() as source:
        parser = WorkSheetParser(
            source,
            sheet._shared_strings,
            data_only=True,
            epoch=workbook.epoch,
            date_formats=workbook._date_formats,
            timedelta_formats=workbook._timedelta_formats,
        )
        for _, cells in parser.parse():
            yield cells


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
