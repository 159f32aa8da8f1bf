"""Backups as files: written under a hidden partial name and renamed only when complete (an
interrupted backup leaves nothing that looks like one), named by time in a folder and rotated
for a cron line, and the last one recorded for the admin page."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from iaforall.backup.write import BackupSummary, write_backup
from iaforall.models.store import Progress, no_progress
from iaforall.settings import Settings
from iaforall.store.private import PRIVATE_FILE

PREFIX = "iaforall-backup-"
SUFFIX = ".tar"
_TIMED = re.compile(re.escape(PREFIX) + r"\d{8}T\d{6}Z" + re.escape(SUFFIX))
LAST_BACKUP = "last-backup.json"


@dataclass(frozen=True, slots=True)
class LastBackup:
    at: str  # ISO 8601, UTC
    size: int  # bytes of the files inside
    files: int
    schema_version: str
    how: str  # "command" (`iaforall backup`) or "download" (the admin page)


def timed_name(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{PREFIX}{moment:%Y%m%dT%H%M%SZ}{SUFFIX}"


def target_of(given: Path | None) -> Path:
    """Where `iaforall backup [FILE]` writes: FILE, or a timed name in FILE when it is a
    folder (or in the current folder when no FILE is given)."""
    if given is None:
        return Path.cwd() / timed_name()
    return given / timed_name() if given.is_dir() else given


def partial_of(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial")


def backup_to_file(
    settings: Settings, target: Path, progress: Progress = no_progress
) -> BackupSummary:
    """The archive at `target`, 0600 (it holds password hashes), only once it is complete."""
    partial = partial_of(target)
    partial.unlink(missing_ok=True)  # left by a backup killed half-way
    descriptor = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
    try:
        with os.fdopen(descriptor, "wb") as out:
            summary = write_backup(settings, out, progress)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _sync_folder(target.parent)
    record_backup(settings, summary, how="command")
    return summary


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def rotate(folder: Path, keep: int) -> list[Path]:
    """The timed backups in `folder` beyond the newest `keep` removed; returns them."""
    timed = sorted(p for p in folder.iterdir() if _TIMED.fullmatch(p.name) and p.is_file())
    old = timed[:-keep] if keep > 0 else timed
    for path in old:
        path.unlink(missing_ok=True)
    return old


def record_backup(settings: Settings, summary: BackupSummary, *, how: str) -> None:
    last = LastBackup(
        datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        summary.size,
        summary.files,
        summary.schema_version,
        how,
    )
    path = settings.store.home / LAST_BACKUP
    partial = partial_of(path)
    descriptor = os.open(partial, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, PRIVATE_FILE)
    with os.fdopen(descriptor, "w") as out:
        json.dump(asdict(last), out)
    os.replace(partial, path)


def last_backup(settings: Settings) -> LastBackup | None:
    try:
        body = json.loads((settings.store.home / LAST_BACKUP).read_bytes())
        return LastBackup(**body)
    except (OSError, ValueError, TypeError):
        return None
