"""`iaforall backup`: the archive written as a stream (tar's stream mode, never held in
memory) into any binary file: a hidden partial file renamed when complete, or an HTTP reply."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, BinaryIO

from iaforall import __version__
from iaforall.backup.archive import (
    MANIFEST,
    POSTGRESQL_MEMBER,
    SQLITE_MEMBER,
    FileEntry,
    Manifest,
    ModelToPull,
    pull_command,
)
from iaforall.backup.database_copy import (
    backend_of,
    copy_sqlite,
    dump_postgresql,
    sqlite_schema_version,
)
from iaforall.backup.workdir import WorkFolder, new_work_folder
from iaforall.core.errors import BackupRefused
from iaforall.models.store import Progress, no_progress
from iaforall.settings import Settings
from iaforall.store.database import Database

KNOWLEDGE = "knowledge"
MANIFESTS = "manifests"
WORK_PREFIX = ".backup-"


@dataclass(frozen=True, slots=True)
class BackupSummary:
    files: int
    size: int  # bytes of the files inside (the archive adds ~1 KB each)
    schema_version: str
    models: list[ModelToPull]


class _Hashing:
    """A file read through: its sha256 as tar copies it."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.sha256.update(data)
        return data


def _people_files(home: Path) -> Iterator[tuple[str, Path]]:
    """(member name, file) of the knowledge files and model manifests, in a stable order.
    Hidden files (partial writes) and uploads still arriving (`knowledge/incoming`) are left."""
    for top in (KNOWLEDGE, MANIFESTS):
        root = home / top
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(home)
            hidden = any(part.startswith(".") for part in relative.parts)
            if hidden or relative.parts[:2] == (KNOWLEDGE, "incoming"):
                continue
            if path.is_file() and not path.is_symlink():
                yield relative.as_posix(), path


def _models(manifests: Path) -> list[ModelToPull]:
    found = []
    for path in sorted(manifests.glob("[!.]*.json")) if manifests.is_dir() else []:
        try:
            body = json.loads(path.read_bytes())
            name, source, sha256 = str(body["name"]), str(body["source"]), str(body["sha256"])
            file = Path(str(body["file"])).name
        except (OSError, ValueError, KeyError, TypeError):
            continue  # the store ignores it too
        command = pull_command(name, source, sha256)
        found.append(ModelToPull(name, file, source, sha256, command))
    return found


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = int(datetime.now(UTC).timestamp())
    return info


def _database_copy(settings: Settings, work: Path) -> tuple[str, Path, str]:
    """(member name, copy, schema version) of the live database."""
    url = settings.database_url
    backend = backend_of(url)
    if backend == "sqlite":
        copy = work / "iaforall.db"
        copy_sqlite(url, copy)
        return SQLITE_MEMBER, copy, sqlite_schema_version(copy)
    if backend == "postgresql":
        database = Database(url)
        try:
            version = database.schema_version()
        finally:
            database.close()
        if version is None:
            raise BackupRefused("The PostgreSQL database has never been set up by IAForAll.")
        copy = work / "postgresql.sql"
        dump_postgresql(url, copy)
        return POSTGRESQL_MEMBER, copy, version
    raise BackupRefused(f"A {backend} database cannot be backed up: only SQLite and PostgreSQL.")


@dataclass
class Snapshot:
    """The database copied, and the list of files to archive with it; `close` removes the
    copy."""

    work: WorkFolder
    files: list[tuple[str, Path]]
    backend: str
    schema_version: str
    models: list[ModelToPull]

    def close(self) -> None:
        self.work.close()


def take_snapshot(settings: Settings, progress: Progress = no_progress) -> Snapshot:
    """A consistent copy of the live database, and the people's files beside it."""
    home = settings.store.home
    if not home.is_dir():
        raise BackupRefused(
            f"There is no IAForAll home at {home}: set IAFORALL_HOME to the server's home folder."
        )
    work = new_work_folder(home, WORK_PREFIX)  # beside the database, 0700
    try:
        progress("copying the database", 0, 0)
        member, copy, version = _database_copy(settings, work.path)
        files: list[tuple[str, Path]] = [(member, copy), *_people_files(home)]
        rules = settings.policy.rules_file
        if rules is not None and rules.is_file():
            files.append((f"rules/{rules.name}", rules))
        backend = backend_of(settings.database_url)
        return Snapshot(work, files, backend, version, _models(home / MANIFESTS))
    except BaseException:
        work.close()
        raise


def write_archive(
    snapshot: Snapshot, out: BinaryIO, progress: Progress = no_progress
) -> BackupSummary:
    """The archive written to `out` (which need not seek), the manifest last."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        entries = _add_files(tar, snapshot.files, progress)
        manifest = Manifest(
            __version__,
            datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            snapshot.backend,
            snapshot.schema_version,
            entries,
            snapshot.models,
        )
        body = manifest.to_json()
        tar.addfile(_member(MANIFEST, len(body)), io.BytesIO(body))
    size = sum(e.size for e in entries)
    progress("backed up", size, size)
    return BackupSummary(len(entries), size, snapshot.schema_version, snapshot.models)


def write_backup(
    settings: Settings, out: BinaryIO, progress: Progress = no_progress
) -> BackupSummary:
    """The whole archive of `settings`' server written to `out`."""
    snapshot = take_snapshot(settings, progress)
    try:
        return write_archive(snapshot, out, progress)
    finally:
        snapshot.close()


def _add_files(
    tar: tarfile.TarFile, files: list[tuple[str, Path]], progress: Progress
) -> list[FileEntry]:
    """Each file streamed into the archive and hashed on the way; one removed meanwhile (a
    document deleted during the backup) is left out."""
    total = sum(_size(path) for _, path in files)
    done = 0
    entries = []
    for name, path in files:
        try:
            file = path.open("rb")
        except FileNotFoundError:
            continue
        with file:
            size = os.fstat(file.fileno()).st_size
            reader = _Hashing(file)
            tar.addfile(_member(name, size), reader)
        entries.append(FileEntry(name, size, reader.sha256.hexdigest()))
        done += size
        progress(f"backing up {name}", done, max(total, done))
    return entries


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
