"""`iaforall pull NAME [NAME ...]` and `iaforall pull --bundle full|english|chat`: chat models
(from the Hugging Face Hub, a URL, a local file or a packaged name) and the runtimes' models
(Whisper, the voices) together. What will be downloaded is said first, then one progress display
on stderr, and a one-line summary per model on stdout."""

from __future__ import annotations

from dataclasses import dataclass

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

from iaforall.cli.models import _store, _summary
from iaforall.core.errors import IAForAllError, InvalidRequest, ModelStoreError
from iaforall.engines.tts.espeak import find
from iaforall.models.image_pull import add_folder, hub_holds_image_model, is_image_folder, pull_hub
from iaforall.models.packaged import UnknownModel, missing_parts
from iaforall.models.pull import FileSource, HubSource, PackagedSource, parse_source
from iaforall.models.pull import pull as pull_model
from iaforall.models.runtime_packages import (
    BUNDLES,
    BuiltinVoices,
    RuntimeModel,
    find_runtime_model,
)
from iaforall.models.runtime_store import RuntimeStore, StoredRuntime
from iaforall.models.store import ModelStore, Progress
from iaforall.settings import Settings


@dataclass(frozen=True, slots=True)
class Planned:
    name: str
    download: int | None  # bytes to download; None: not known before it starts
    note: str  # how it comes, for the plan's line


def pull(
    settings: Settings,
    sources: list[str],
    name: str | None = None,
    sha256: str | None = None,
    *,
    bundle: str | None = None,
    model: str | None = None,
) -> int:
    """Pull every source (and the bundle's models, when `bundle` is given: "" for the
    IAFORALL_BUNDLE setting); 0 when all are here at the end."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    out = Console(highlight=False, soft_wrap=True)
    names = list(sources)
    optional: set[str] = set()  # a bundle's extras this machine may lack (eSpeak NG)
    if bundle is not None:
        chosen = bundle or settings.store.bundle
        if chosen not in BUNDLES:
            return _fail(err, f"'{chosen}' is not a bundle: choose {', '.join(BUNDLES)}.")
        optional = set(BUNDLES[chosen]) - set(names)
        names = [model or settings.server.model, *BUNDLES[chosen], *names]
    elif model is not None:
        return _fail(err, "--model goes with --bundle; otherwise name the models to pull.")
    names = list(dict.fromkeys(names))  # each once, in order
    if not names:
        return _fail(err, "Name the models to pull, or pull a bundle with --bundle.")
    if (name or sha256) and len(names) > 1:
        return _fail(err, "--name and --sha256 are for one model at a time.")
    store = _store(settings)
    runtimes = RuntimeStore(settings.store.home)
    try:
        plan = [_plan(store, runtimes, n) for n in names]
    except IAForAllError as e:
        return _fail(err, e.message)
    _say_plan(err, plan)
    failed = 0
    lines: list[str] = []
    bars = _Bars(err)
    try:
        for item in names:
            progress = bars.task(item)
            try:
                lines.append(_pull_one(settings, store, runtimes, item, name, sha256, progress))
            except IAForAllError as e:
                if item in optional and isinstance(find_runtime_model(item), BuiltinVoices):
                    # eSpeak NG is not downloaded by us: the rest of the bundle works without
                    err.print(f"warning: {e.message}", style="yellow", markup=False)
                    continue
                failed += 1
                err.print(f"error: {item}: {e.message}", style="red", markup=False)
    finally:
        bars.close()
    for line in lines:
        out.print(line, markup=False)
    return 1 if failed else 0


def _plan(store: ModelStore, runtimes: RuntimeStore, name: str) -> Planned:
    found = find_runtime_model(name)
    if isinstance(found, RuntimeModel):
        bytes_ = runtimes.download_needed(found)
        if bytes_ == 0:
            stored = runtimes.get(found.name)
            here = stored is not None and stored.matches(found)
            return Planned(name, 0, "already here" if here else "from its installed package")
        return Planned(name, bytes_, decimal(bytes_))
    if isinstance(found, BuiltinVoices):
        return Planned(name, 0, "comes with IAForAll")
    source = parse_source(name)
    if isinstance(source, FileSource) and is_image_folder(source.path.expanduser()):
        return Planned(name, 0, "an image model, from a local folder")
    if isinstance(source, PackagedSource):
        packaged = store.registry.get(source.name)
        if packaged is None:
            raise UnknownModel(name, list(store.registry))
        current = store.get(packaged.name)
        if current is not None and current.sha256 == packaged.sha256:
            return Planned(name, 0, "already here")
        missing = missing_parts(packaged)
        if not missing:
            return Planned(name, 0, "from its installed package")
        share = packaged.size * len(missing) // len(packaged.parts)
        return Planned(name, share, f"about {decimal(share)}")
    if store.get(name) is not None:
        return Planned(name, 0, "already here")
    return Planned(name, None, "size known when it starts")


def _say_plan(err: Console, plan: list[Planned]) -> None:
    known = sum(p.download or 0 for p in plan)
    unknown = [p.name for p in plan if p.download is None]
    parts = [f"{p.name} ({p.note})" if p.note else p.name for p in plan]
    if known or unknown:
        total = f"{decimal(known)} to download" if known else "nothing known to download"
        more = f", plus {', '.join(unknown)}" if unknown else ""
        err.print(f"Pulling {', '.join(parts)}: {total}{more}.", markup=False)
    else:
        err.print(f"Pulling {', '.join(parts)}: nothing to download.", markup=False)


def _pull_one(
    settings: Settings,
    store: ModelStore,
    runtimes: RuntimeStore,
    item: str,
    name: str | None,
    sha256: str | None,
    progress: Progress,
) -> str:
    found = find_runtime_model(item)
    if found is not None and (name or sha256):
        raise InvalidRequest(f"{found.name} keeps its own name and checksum.")
    if isinstance(found, RuntimeModel):
        result = runtimes.pull(found, progress)
        state = "is ready" if result.fresh else "is already up to date"
        where = result.stored.path
        return f"{found.name} {state} ({decimal(result.stored.size)}, {found.title}): {where}"
    if isinstance(found, BuiltinVoices):
        espeak = find(settings.voice.espeak)
        if espeak is not None and espeak.kind == "system":
            return f"{found.name} is here (the system's espeak-ng): nothing to download."
        if espeak is not None:
            return f"{found.name} comes with IAForAll (espeakng-loader): nothing to download."
        raise ModelStoreError(
            f"{found.name} ({found.title}) is missing: install it with `{found.install}`."
        )
    source = parse_source(item)
    if isinstance(source, FileSource) and is_image_folder(source.path.expanduser()):
        if sha256:
            raise InvalidRequest("--sha256 is for one file; an image model is a folder.")
        stored = add_folder(settings.store.home, source.path, name, progress)
        return _image_summary(stored)
    if isinstance(source, HubSource) and source.quant is None and source.filename is None:
        siblings = hub_holds_image_model(source.repo, settings.other_programs)
        if siblings is not None:
            if sha256:
                raise InvalidRequest("--sha256 is for one file; the Hub gives each file's.")
            stored = pull_hub(
                settings.store.home, source.repo, name, progress, settings.other_programs, siblings
            )
            return _image_summary(stored)
    before = store.get(item) if not name else None
    info = pull_model(
        store,
        item,
        name=name,
        sha256=sha256,
        allow_private=settings.store.pull_allow_private,
        progress=progress,
        hub=settings.other_programs,
    )
    state = "is already up to date" if before is not None and info == before else "is ready"
    return _summary(info, state)


def _image_summary(stored: StoredRuntime) -> str:
    return (
        f"{stored.name} is ready ({decimal(stored.size)}, an image model: "
        f"POST /v1/images/generations with model={stored.name}): {stored.path}"
    )


def _fail(err: Console, message: str) -> int:
    err.print(f"error: {message}", style="red", markup=False)
    return 1


class _Bars:
    """One rich display for the whole pull, one bar per model, drawn from its first event."""

    def __init__(self, console: Console) -> None:
        self.display = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,  # no bar drawn into logs or pipes
        )
        self.started = False

    def task(self, label: str) -> Progress:
        ids: list[TaskID] = []

        def progress(description: str, completed: int, total: int) -> None:
            if not self.started:
                self.display.start()
                self.started = True
            if not ids:
                # total 0 means not known yet (pip is installing): an indeterminate bar.
                ids.append(
                    self.display.add_task(description, total=total or None, completed=completed)
                )
            else:
                self.display.update(
                    ids[0], description=description, completed=completed, total=total or None
                )

        return progress

    def close(self) -> None:
        """Stop drawing (before an error or a summary is printed under the bars)."""
        if self.started:
            self.display.stop()
            self.started = False
