"""Work folders are removed once their process is gone, whatever its pid, never while it works."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from iaforall.backup.workdir import LOCK, YOUNG_SECONDS, new_work_folder, remove_abandoned


def test_a_folder_at_work_stays_and_an_abandoned_one_goes(tmp_path: Path) -> None:
    working = new_work_folder(tmp_path, ".backup-")
    assert stat.S_IMODE(working.path.stat().st_mode) == 0o700
    # left by a killed process, even one that had this very pid (a container's pid 1)
    left = tmp_path / ".backup-left"
    left.mkdir()
    (left / LOCK).touch()
    (left / "iaforall.db").write_bytes(b"copy")
    # one being made by another process, not locked yet
    young = tmp_path / ".backup-young"
    young.mkdir()
    # an old one that never got its lock
    old = tmp_path / ".backup-old"
    old.mkdir()
    past = time.time() - YOUNG_SECONDS - 10
    os.utime(old, (past, past))

    remove_abandoned(tmp_path, ".backup-")

    assert working.path.is_dir() and young.is_dir()
    assert not left.exists() and not old.exists()
    working.close()
    assert not working.path.exists()
