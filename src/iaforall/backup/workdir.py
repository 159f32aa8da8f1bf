"""A backup's or a restore's work folder in the home (its copy of the database): locked while
the work runs, so that one left by a killed process is known, whatever its process id became
(a container's server is always pid 1), and removed by the next backup or restore."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from iaforall.store.private import PRIVATE_FILE

try:
    import fcntl
except ImportError:  # Windows: no lock, left folders are the administrator's to remove
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"
YOUNG_SECONDS = 60.0  # a folder made this recently may not have its lock yet


@dataclass
class WorkFolder:
    path: Path
    lock: int  # the open lock file; closing it releases the lock

    def close(self) -> None:
        os.close(self.lock)
        shutil.rmtree(self.path, ignore_errors=True)


def new_work_folder(home: Path, prefix: str) -> WorkFolder:
    """A new private (0700) folder `<home>/<prefix>…`, locked until closed; those a killed
    process left are removed first."""
    remove_abandoned(home, prefix)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=home))
    lock = os.open(path / LOCK, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE)
    if fcntl is not None:
        fcntl.flock(lock, fcntl.LOCK_EX)
    return WorkFolder(path, lock)


def remove_abandoned(home: Path, prefix: str) -> None:
    for path in home.glob(f"{prefix}*"):
        if path.is_dir() and _abandoned(path):
            shutil.rmtree(path, ignore_errors=True)


def _abandoned(path: Path) -> bool:
    if fcntl is None:
        return False
    try:
        lock = os.open(path / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        try:
            return time.time() - path.stat().st_mtime > YOUNG_SECONDS
        except FileNotFoundError:
            return False
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its process is still at work
    finally:
        os.close(lock)
    return True
