"""What IAForAll keeps for people is theirs: the home folder is private to the server's account
(0700) and the files holding secrets or people's data (the database) are 0600, whatever the
umask. What was made looser before, and is ours, is tightened once, with a line in the log."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path, *, tighten_existing: bool = True) -> None:
    """`path` as a folder only this account may enter: made 0700 when missing (its missing
    parents get the usual mode), tightened when it exists, is ours and is open to others
    (unless `tighten_existing` is off: a folder someone chose for the database alone is theirs)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        os.chmod(path, PRIVATE_DIR)  # mkdir's mode passes through the umask
    elif tighten_existing:
        tighten(path, PRIVATE_DIR)


def private_file(path: Path) -> None:
    """`path` made empty with mode 0600 when missing, tightened when it is ours and looser."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE))
    except FileExistsError:
        tighten(path, PRIVATE_FILE)


def tighten(path: Path, mode: int = PRIVATE_FILE) -> None:
    """`path`'s mode limited to `mode` when it is ours (nothing when it is missing)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return
    now = stat.S_IMODE(status.st_mode)
    if status.st_uid != os.geteuid() or not now & ~mode:
        return
    os.chmod(path, now & mode)
    log.warning(
        "%s was readable by other accounts (mode %o): it is now %o, as it holds people's data.",
        path,
        now,
        now & mode,
    )
