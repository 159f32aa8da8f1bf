"""Image models into the store (`<home>/runtimes/<name>/`, a manifest of kind "image"): from a
local folder, or from a Hugging Face Hub repository that holds an ONNX export
(`iaforall pull hf.co/owner/repo --name sd-turbo`).

The same checks as chat models: the Hub's sizes and sha256 (its LFS metadata) checked on every
file, disk space checked before the download, `huggingface_hub` resuming a dropped transfer, the
files copied into a hidden folder and renamed in place only when all are there.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any, cast

from iaforall.core.errors import ModelStoreError
from iaforall.engines.images.folder import check, files_of, looks_like_image_model, wanted
from iaforall.models.pull import (
    RETRIES,
    HubNotFound,
    HubSource,
    HubUnreachable,
    hub_progress,
    lfs_field,
    transport_errors,
)
from iaforall.models.runtime_store import RuntimeStore, StoredRuntime
from iaforall.models.store import Progress, canonical_name, check_free_space, no_progress
from iaforall.settings import OtherPrograms


def is_image_folder(path: Path) -> bool:
    """A local folder that holds a text-to-image export (rather than a GGUF file)."""
    return path.is_dir() and looks_like_image_model(files_of(path))


def image_name(given: str | None, fallback: str) -> str:
    """The model's name in the store: the one given, else the folder's or repository's."""
    if given:
        return canonical_name(given)
    base = re.sub(r"[^a-z0-9._-]+", "-", fallback.lower()).strip("._-")
    base = re.sub(r"[-_.]onnx(runtime)?$", "", base) or "image-model"
    return canonical_name(base[:100])


def add_folder(
    home: Path, folder: Path, name: str | None = None, progress: Progress = no_progress
) -> StoredRuntime:
    """A local folder's image model copied into the store (checked first: a 400 if it is not
    one)."""
    folder = folder.expanduser()
    if not folder.is_dir():
        raise ModelStoreError(f"{folder} is not a folder.")
    names = files_of(folder)
    check(names, str(folder))
    kept = {relative: folder / relative for relative in wanted(names)}
    return RuntimeStore(home).add_files(
        image_name(name, folder.resolve().name), "image", kept, f"folder:{folder}", progress
    )


def hub_holds_image_model(repo: str, hub: OtherPrograms) -> list[Any] | None:
    """The repository's files when it is a text-to-image ONNX export; None otherwise (a GGUF
    repository); errors as the chat models' pull reports them."""
    siblings = _siblings(HubSource(repo), hub)
    names = [s.rfilename for s in siblings]
    return siblings if looks_like_image_model(names) else None


def pull_hub(
    home: Path,
    repo: str,
    name: str | None = None,
    progress: Progress = no_progress,
    hub: OtherPrograms | None = None,
    siblings: list[Any] | None = None,
) -> StoredRuntime:
    """A Hub repository's image model into the store, each file checked against the Hub's
    size and sha256."""
    from huggingface_hub.errors import HfHubHTTPError

    hub = hub or OtherPrograms()
    siblings = siblings if siblings is not None else _siblings(HubSource(repo), hub)
    by_name = {s.rfilename: s for s in siblings}
    check(list(by_name), repo)
    chosen = wanted(list(by_name))
    sizes = {f: lfs_field(by_name[f], "size") or by_name[f].size or 0 for f in chosen}
    expected = {f: sha for f in chosen if (sha := lfs_field(by_name[f], "sha256"))}
    # huggingface_hub keeps what it received in this folder: a pull cut short resumes there.
    key = hashlib.sha256(repo.encode()).hexdigest()[:12]
    scratch = home / "downloads" / "hf" / f"image-{key}"
    store = RuntimeStore(home)
    store.dir.mkdir(parents=True, exist_ok=True)
    check_free_space(store.dir, 2 * sum(sizes.values()))  # the download, the store's copy
    paths: dict[str, Path] = {}
    try:
        for filename in chosen:
            paths[filename] = _download(repo, filename, scratch, sizes[filename], progress, hub)
    except (HfHubHTTPError, OSError) as exc:
        raise ModelStoreError(f"Pulling {repo} from the Hub failed: {exc}") from None
    try:
        return store.add_files(
            image_name(name, repo.split("/", 1)[1]),
            "image",
            paths,
            f"hf:{repo}",
            progress,
            expected_sha256=expected,
        )
    finally:  # installed, or a file that is not the Hub's: either way not kept to resume
        shutil.rmtree(scratch, ignore_errors=True)


def _download(
    repo: str, filename: str, scratch: Path, size: int, progress: Progress, hub: OtherPrograms
) -> Path:
    """One file of the repository, its transfer resumed where a dropped connection cut it."""
    from huggingface_hub import hf_hub_download

    for attempt in range(RETRIES + 1):
        try:
            fetched = Path(
                hf_hub_download(
                    repo,
                    filename,
                    local_dir=scratch,
                    endpoint=hub.hub_endpoint,
                    tqdm_class=cast(Any, hub_progress(progress, f"pulling {filename}")),
                )
            )
            break
        except transport_errors() as exc:
            if attempt == RETRIES:
                raise ModelStoreError(
                    f"The download of {repo}'s {filename} was interrupted ({exc}). What was "
                    "received is kept: pull again to resume."
                ) from None
    if size and fetched.stat().st_size != size:
        raise ModelStoreError(
            f"{repo}'s {filename} is {fetched.stat().st_size} bytes, not the {size} the Hub "
            "lists. Nothing was installed."
        )
    return fetched


def _siblings(src: HubSource, hub: OtherPrograms) -> list[Any]:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if hub.hub_offline:
        raise ModelStoreError(
            f"HF_HUB_OFFLINE is set: the Hugging Face Hub is not reached. Unset it to pull "
            f"{src.repo}."
        )
    try:
        info = HfApi(endpoint=hub.hub_endpoint).model_info(src.repo, files_metadata=True)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise HubNotFound(f"repository {src.repo} (or it is private: set HF_TOKEN)") from None
    except HfHubHTTPError as exc:
        raise ModelStoreError(f"Pulling {src.repo} from the Hub failed: {exc}") from None
    except transport_errors() as exc:
        raise HubUnreachable(
            f"The Hugging Face Hub ({hub.hub_endpoint or 'https://huggingface.co'}) could not "
            f"be reached to pull {src.repo}: {exc}. Check this machine's network (or "
            "HF_ENDPOINT)."
        ) from None
    return list(info.siblings or [])
