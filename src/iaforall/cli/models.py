"""The model store from the command line: list, rm, cp, link, show.

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

from iaforall.core.errors import IAForAllError, InvalidRequest, ModelNotFound
from iaforall.models import PACKAGED, ModelInfo, ModelStore, canonical_name
from iaforall.models.gguf_meta import read_fields
from iaforall.models.projector import projector_for
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


KIND_NAMES = {
    "chat": "chat",
    "speech_to_text": "speech to text",
    "text_to_speech": "text to speech",
    "embeddings": "embeddings",
    "ocr": "OCR",
    "image": "image",
}
ORIGINS = {"store": "store", "package": "package", "iaforall": "IAForAll", "system": "system"}


def list_models(settings: Settings) -> int:
    """Print every model here as a table: the store's chat models, then the runtimes' (in the
    store, in a Python package, or coming with IAForAll), each with its kind and size."""
    from iaforall.engines.installed import runtime_models

    store = _store(settings)
    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out.width = 160  # a pipe or a file: one line per model, for grep
    models = store.list()
    try:
        default = canonical_name(settings.server.model)
    except InvalidRequest:
        default = None
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "KIND", "SIZE", "FROM", "FAMILY", "QUANTIZATION", "CONTEXT"):
        right = column in ("SIZE", "CONTEXT")
        table.add_column(column, justify="right" if right else "left", no_wrap=column != "NAME")
    for info in models:
        table.add_row(
            f"{info.name} (default)" if info.name == default else info.name,
            "chat",
            decimal(info.size),
            "store",
            info.family,
            info.quantization or "-",
            str(info.context_length) if info.context_length else "-",
        )
    for runtime in runtime_models(settings):
        size = decimal(runtime.size) if runtime.size is not None else "-"
        table.add_row(
            runtime.name, KIND_NAMES[runtime.kind], size, ORIGINS[runtime.origin], "-", "-", "-"
        )
    out.print(table)
    if not models:
        out.print(
            f"No chat model yet (in {store.models_dir}). Get the default one with:\n"
            f"  iaforall pull {settings.server.model}\n"
            f"Chat models you can pull: {', '.join(PACKAGED)}; "
            "or add a GGUF file: iaforall pull ./model.gguf --name my-model",
            markup=False,
        )
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


def _fail(err: Console, error: IAForAllError) -> int:
    err.print(f"error: {error.message}", style="red", markup=False)
    return 1


def remove_models(settings: Settings, names: list[str]) -> int:
    """`iaforall rm`: the models' manifests and files (a linked file itself stays); a
    runtime's model from the store, or the pip command for one a Python package brings."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    store = _store(settings)
    for name in names:
        try:
            said = _remove_runtime(settings, name)
            if said is None:
                store.remove(name)
                said = f"deleted {name}"
        except IAForAllError as e:
            return _fail(err, e)
        Console(highlight=False, soft_wrap=True).print(said, markup=False)
    return 0


def _remove_runtime(settings: Settings, name: str) -> str | None:
    """What removing the runtime model `name` did; None when it is not one."""
    from iaforall.models.runtime_packages import BuiltinVoices, find_runtime_model
    from iaforall.models.runtime_store import RuntimeStore

    model = find_runtime_model(name)
    if model is None:
        return _remove_image_model(settings, name)
    if isinstance(model, BuiltinVoices):
        raise InvalidRequest(
            f"{model.name} comes with IAForAll (eSpeak NG): there is nothing to remove."
        )
    runtimes = RuntimeStore(settings.store.home)
    uninstall = "pip uninstall " + " ".join(w.distribution for w in model.wheels)
    in_package = model.installed_wheels()
    if runtimes.get(model.name) is None:
        if in_package:
            raise InvalidRequest(
                f"{model.name} is not in the store: it comes from a Python package here. "
                f"Remove it with `{uninstall}`."
            )
        raise ModelNotFound(model.name, install=f"iaforall pull {model.name}")
    runtimes.remove(model.name)
    if in_package:
        return f"deleted {model.name} (its Python package still brings it: `{uninstall}`)"
    return f"deleted {model.name}"


def _remove_image_model(settings: Settings, name: str) -> str | None:
    """An image model's folder removed from the store; None when `name` is not one."""
    from iaforall.models.runtime_store import RuntimeStore

    runtimes = RuntimeStore(settings.store.home)
    for candidate in (name, f"{name}:latest"):
        stored = runtimes.get(candidate)
        if stored is not None and stored.manifest.kind == "image":
            runtimes.remove(stored.name)
            return f"deleted {stored.name}"
    return None


def copy_model(settings: Settings, source: str, destination: str) -> int:
    """`iaforall cp`: a second name for a model (a hard link: no space taken where possible)."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        info = _store(settings).copy(source, destination)
    except IAForAllError as e:
        return _fail(err, e)
    Console(highlight=False).print(f"copied {source} to {info.name}", markup=False)
    return 0


def link_models(settings: Settings, path: Path, name: str | None = None) -> int:
    """`iaforall link`: index GGUF files where they are (one file, or every model of a
    folder), without copying them."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    store = _store(settings)
    path = path.expanduser()
    if path.is_dir():
        if name:
            return _fail(err, InvalidRequest("--name is for one file, not a folder."))
        files = sorted(
            f for f in path.glob("*.gguf") if f.is_file() and not f.name.startswith("mmproj")
        )
        if not files:
            return _fail(err, InvalidRequest(f"There is no .gguf model file in {path}."))
    else:
        files = [path]
    status = 0
    for file in files:
        progress = _ProgressBar(err)
        try:
            info = store.link(file, name, progress)
        except IAForAllError as e:
            progress.close()
            status = _fail(err, e)  # one bad file does not stop the others
            continue
        progress.close()
        Console(highlight=False, soft_wrap=True).print(
            _summary(info, f"is linked from {file}"), markup=False
        )
    return status


def show_model(settings: Settings, name: str, part: str | None = None) -> int:
    """`iaforall show`: what a model is (from its GGUF header), or one part of it."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    info = _store(settings).get(name)
    if info is None:
        return _fail(err, ModelNotFound(name))
    fields = read_fields(info.path)
    template = fields.get("tokenizer.chat_template", "")
    licence = str(fields.get("general.license", "") or "")
    parameters = f"num_ctx {settings.engine.context_length}"
    out = Console(highlight=False, soft_wrap=True)
    if part is not None:
        text = {"template": template, "license": licence, "parameters": parameters}[part]
        out.print(text or f"(no {part} in {info.name}'s file)", markup=False)
        return 0
    table = Table(box=None, show_header=False, pad_edge=False)
    rows = [
        ("name", info.name),
        ("file", str(info.path.resolve())),
        ("size", decimal(info.size)),
        ("sha256", info.sha256),
        ("source", info.source),
        ("family", info.family),
        ("parameters", info.parameter_size or "-"),
        ("quantization", info.quantization or "-"),
        ("context", f"{info.context_length or '-'} (served with {parameters})"),
        ("tools", "yes" if info.supports_tools else "no"),
        ("vision", "yes" if projector_for(info.path) else "no"),
        ("chat template", "yes (iaforall show NAME --template)" if template else "none"),
        ("license", licence or "-"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)
    return 0
