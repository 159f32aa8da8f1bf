"""Rows of cells -> a Markdown table, which chunking recognises by its header row."""

from __future__ import annotations


def markdown_table(rows: list[list[str]]) -> str:
    """The first row is the header; the delimiter row is as wide as the widest row. Shorter
    rows are not padded (Markdown reads missing cells as empty), so the table costs what its
    cells hold: padding every row to the widest one would make one wide row and many short
    ones cost rows x width."""
    width = max(len(row) for row in rows)
    header = rows[0] + [""] * (width - len(rows[0]))
    lines = [_row(header), "|" + " --- |" * width]
    lines += [_row(row) for row in rows[1:]]
    return "\n".join(lines)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
