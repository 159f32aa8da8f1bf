"""`iaforall restore FILE`: the archive read twice. First every member is checked (a plain
file, at a path a backup writes to, listed in the manifest with this size and sha256; the
schema one this code knows; a target that holds no one's data) and nothing is written unless
all of it holds. Then the files are written (0600, folders 0700) and the schema migrated."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from iaforall.backup.archive import (
    MANIFEST,
    MANIFEST_MAX_BYTES,
    POSTGRESQL_MEMBER,
    SQLITE_MEMBER,
    Manifest,
    ModelToPull,
    check_member_name,
)
from iaforall.backup.database_copy import (
    backend_of,
    database_is_empty,
    place_sqlite,
    restore_postgresql,
    sqlite_path,
)
from iaforall.backup.workdir import new_work_folder
from iaforall.core.errors import BackupRefused
from iaforall.models.store import Progress, no_progress
from iaforall.settings import Settings
from iaforall.store.database import Database, known_schema_versions
from iaforall.store.private import PRIVATE_FILE, private_dir

CHUNK = 1024 * 1024
MB = 1_000_000
ROOM_MARGIN = 50 * MB  # the migrations' work, the logs of a first start
DATABASE_MEMBERS = {"sqlite": SQLITE_MEMBER, "postgresql": POSTGRESQL_MEMBER}
RESTORED_RULES = "rules.toml"


@dataclass(frozen=True, slots=True)
class RestoreSummary:
    files: int
    size: int
    schema_from: str
    schema_to: str
    iaforall_version: str  # the version that made the backup
    rules: Path | None  # where the rules file went
    models_to_pull: list[ModelToPull]  # named by the manifests, with no file here


@contextmanager
def _opened(archive: Path) -> Iterator[tarfile.TarFile]:
    try:
        tar = tarfile.open(archive, mode="r:*")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise BackupRefused(f"There is no file {archive}.") from None
    except IsADirectoryError:
        raise BackupRefused(f"{archive} is a folder; give the backup file inside it.") from None
    except (tarfile.TarError, EOFError, OSError):
        raise BackupRefused(
            f"{archive} is not a backup: it is not a tar archive (`iaforall backup` makes one)."
        ) from None
    with tar:
        yield tar


def _members(tar: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    """Each member with its content, read as the archive streams; a damaged archive is
    refused with tar's reason."""
    try:
        for member in tar:
            if member.name != MANIFEST:
                check_member_name(member.name)
                if not member.isreg():
                    raise BackupRefused(
                        f"It holds '{member.name}', which is not a plain file (a link, a folder "
                        "or a device); a backup holds plain files only."
                    )
            yield member, tar.extractfile(member)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise BackupRefused(f"The archive is damaged or cut short ({e}).") from None


def _digest(content: IO[bytes]) -> tuple[int, str]:
    sha256 = hashlib.sha256()
    size = 0
    while chunk := content.read(CHUNK):
        sha256.update(chunk)
        size += len(chunk)
    return size, sha256.hexdigest()


def verify(archive: Path, progress: Progress = no_progress) -> Manifest:
    """The archive's manifest, once every file in it is checked (BackupRefused otherwise)."""
    found: dict[str, tuple[int, str]] = {}
    manifest_bytes: bytes | None = None
    total = archive.stat().st_size if archive.is_file() else 0
    with _opened(archive) as tar:
        try:
            for member, content in _members(tar):
                if content is None:
                    continue
                if member.name == MANIFEST:
                    manifest_bytes = content.read(MANIFEST_MAX_BYTES + 1)
                    if len(manifest_bytes) > MANIFEST_MAX_BYTES:
                        raise BackupRefused("Its manifest.json is too large to be a backup's.")
                    continue
                if member.name in found:
                    raise BackupRefused(f"It holds '{member.name}' twice.")
                found[member.name] = _digest(content)
                progress(f"checking {member.name}", min(tar.offset, total), total)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise BackupRefused(f"The archive is damaged or cut short ({e}).") from None
    if manifest_bytes is None:
        raise BackupRefused(
            "It has no manifest.json: it is not a backup made by `iaforall backup`, or it was "
            "cut short before the end."
        )
    manifest = Manifest.from_json(manifest_bytes)
    listed = {entry.path: entry for entry in manifest.files}
    unlisted = sorted(found.keys() - listed.keys())
    if unlisted:
        raise BackupRefused(f"It holds '{unlisted[0]}', which its manifest does not list.")
    for entry in manifest.files:
        if entry.path not in found:
            raise BackupRefused(f"'{entry.path}' is listed in its manifest but missing.")
        if found[entry.path] != (entry.size, entry.sha256):
            raise BackupRefused(
                f"'{entry.path}' is damaged: its size or sha256 is not the one in the manifest."
            )
    return manifest


def _check_target(settings: Settings, manifest: Manifest, force: bool) -> None:
    url = settings.database_url
    backend = backend_of(url)
    if manifest.database_backend != backend:
        raise BackupRefused(
            f"This backup holds a {manifest.database_backend} database and this server uses "
            f"{backend} (IAFORALL_DATABASE_URL): restore it onto a {manifest.database_backend} "
            "database."
        )
    if DATABASE_MEMBERS[backend] not in {entry.path for entry in manifest.files}:
        raise BackupRefused("It holds no copy of the database.")
    known = known_schema_versions()
    if manifest.schema_version not in known:
        raise BackupRefused(
            f"It was made by IAForAll {manifest.iaforall_version} with database schema "
            f"{manifest.schema_version}, newer than this version knows (up to {known[-1]}): "
            "install that version of IAForAll or a newer one to restore it."
        )
    kept = _data_here(settings)
    if backend == "postgresql" and not database_is_empty(url):
        raise BackupRefused(
            "The PostgreSQL database of IAFORALL_DATABASE_URL already has tables, and a restore "
            "does not empty a database: restore into a new one (createdb) or drop and recreate "
            "this one."
        )
    if kept and not force:
        raise BackupRefused(
            f"The home {settings.store.home} already holds data ({', '.join(kept)}): restore "
            "into an empty home (IAFORALL_HOME), or add --force to replace it."
        )


def _check_room(home: Path, needed: int) -> None:
    """Room on the home's disk for every file and a margin, checked before anything is
    written: a restore that would fill the disk is not begun."""
    existing = next(p for p in (home, *home.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < needed + ROOM_MARGIN:
        raise BackupRefused(
            f"The backup needs {needed / MB:.0f} MB and the disk of {home} has "
            f"{free / MB:.0f} MB free: make room, or restore into a home on another disk "
            "(IAFORALL_HOME)."
        )


def _data_here(settings: Settings) -> list[str]:
    """What people's data the target already holds (model files and logs do not count)."""
    home = settings.store.home
    kept = []
    if not database_is_empty(settings.database_url):
        kept.append("a database")
    knowledge = home / "knowledge"
    if knowledge.is_dir() and any(p.is_file() for p in knowledge.rglob("*")):
        kept.append("knowledge files")
    rules = _rules_target(settings)
    if rules.exists():
        kept.append(f"a rules file {rules}")
    return kept


def _rules_target(settings: Settings) -> Path:
    """The configured rules file, or rules.toml in the home (then named in the summary)."""
    return settings.policy.rules_file or settings.store.home / RESTORED_RULES


def restore(
    settings: Settings, archive: Path, *, force: bool = False, progress: Progress = no_progress
) -> RestoreSummary:
    manifest = verify(archive, progress)
    _check_target(settings, manifest, force)
    home = settings.store.home
    _check_room(home, sum(entry.size for entry in manifest.files))
    private_dir(home)
    backend = backend_of(settings.database_url)
    expected = {entry.path: entry for entry in manifest.files}
    total = sum(entry.size for entry in manifest.files)
    if force:
        shutil.rmtree(home / "knowledge", ignore_errors=True)
    folder = new_work_folder(home, ".restore-")
    work = folder.path
    rules: Path | None = None
    try:
        done = 0
        with _opened(archive) as tar:
            for member, content in _members(tar):
                if content is None or member.name == MANIFEST:
                    continue
                entry = expected[member.name]
                top = member.name.split("/", 1)[0]
                if top == "database":
                    target = work / "database"
                elif top == "rules":
                    target = rules = _rules_target(settings)
                else:
                    target = home / member.name
                _write(content, target, (entry.size, entry.sha256))
                done += entry.size
                progress(f"restoring {member.name}", done, total)
        database = work / "database"
        if backend == "sqlite":
            path = sqlite_path(settings.database_url)
            private_dir(path.parent, tighten_existing=False)
            place_sqlite(database, settings.database_url)
        else:
            restore_postgresql(settings.database_url, database)
    finally:
        folder.close()
    progress("migrating the database", total, total)
    migrated = Database(settings.database_url)
    try:
        migrated.upgrade()
        schema_to = migrated.schema_version() or manifest.schema_version
    finally:
        migrated.close()
    models = home / "models"
    return RestoreSummary(
        len(manifest.files),
        total,
        manifest.schema_version,
        schema_to,
        manifest.iaforall_version,
        rules,
        [m for m in manifest.models if not (models / Path(m.file).name).exists()],
    )


def _write(content: IO[bytes], target: Path, expected: tuple[int, str]) -> None:
    """One file written 0600 under private folders, whole or not at all; checked again as it
    is written (the archive could have changed since it was verified)."""
    for folder in reversed(target.parents):
        if not folder.exists():
            private_dir(folder)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
    sha256 = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(descriptor, "wb") as out:
            while chunk := content.read(CHUNK):
                sha256.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if (size, sha256.hexdigest()) != expected:
            raise BackupRefused(f"{target.name} changed in the archive while it was restored.")
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
