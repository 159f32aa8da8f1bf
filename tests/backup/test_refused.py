"""A damaged, foreign, newer or hostile archive is refused with the reason, before anything is
written; so is a home that already holds data. An interrupted backup leaves nothing that looks
like a backup."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from iaforall.backup.files import backup_to_file, partial_of
from iaforall.backup.restore import restore
from iaforall.core.errors import BackupRefused
from iaforall.settings import Settings
from tests.backup.homes import fill, settings_for


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("source")
    settings = settings_for(base / "home", rules=base / "rules.toml")
    fill(settings)
    path = base / "good.tar"
    backup_to_file(settings, path)
    return path


def _members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]


def _rewritten(
    source: Path, into: Path, change: Callable[[tarfile.TarInfo, bytes], bytes | None]
) -> Path:
    """The archive again, each member's bytes as `change` gives them (None: left out)."""
    with tarfile.open(into, "w") as tar:
        for member, data in _members(source):
            new = change(member, data)
            if new is not None:
                member.size = len(new)
                tar.addfile(member, io.BytesIO(new))
    return into


def _refused(settings: Settings, path: Path, reason: str) -> None:
    with pytest.raises(BackupRefused) as refused:
        restore(settings, path)
    assert reason in refused.value.message
    assert not settings.store.home.exists(), "nothing may be written"


def _with_extra(source: Path, into: Path, extra: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(into, "w") as tar:
        tar.addfile(extra, io.BytesIO(data) if extra.isreg() else None)
        for member, body in _members(source):
            tar.addfile(member, io.BytesIO(body))
    return into


def test_a_damaged_file_is_refused(archive: Path, tmp_path: Path) -> None:
    def flip(member: tarfile.TarInfo, data: bytes) -> bytes:
        if member.name.startswith("knowledge/"):
            return data[:-1] + bytes([data[-1] ^ 1])
        return data

    damaged = _rewritten(archive, tmp_path / "damaged.tar", flip)
    _refused(settings_for(tmp_path / "new"), damaged, "is damaged")


def test_a_cut_archive_is_refused(archive: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.tar"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(BackupRefused) as refused:
        restore(settings_for(tmp_path / "new"), cut)
    assert "cut short" in refused.value.message or "no manifest" in refused.value.message
    assert not (tmp_path / "new").exists()


def test_a_missing_file_is_refused(archive: Path, tmp_path: Path) -> None:
    def drop(member: tarfile.TarInfo, data: bytes) -> bytes | None:
        return None if member.name.startswith("rules/") else data

    _refused(
        settings_for(tmp_path / "new"), _rewritten(archive, tmp_path / "m.tar", drop), "missing"
    )


def test_a_file_the_manifest_does_not_list_is_refused(archive: Path, tmp_path: Path) -> None:
    extra = tarfile.TarInfo("knowledge/kb/intruder")
    extra.size = 3
    path = _with_extra(archive, tmp_path / "x.tar", extra, b"bad")
    _refused(settings_for(tmp_path / "new"), path, "does not list")


@pytest.mark.parametrize(
    "name", ["../escape", "/etc/cron.d/x", "knowledge/../../escape", "somewhere/else", "rules/a/b"]
)
def test_a_path_outside_the_backup_places_is_refused(
    archive: Path, tmp_path: Path, name: str
) -> None:
    extra = tarfile.TarInfo(name)
    extra.size = 1
    path = _with_extra(archive, tmp_path / "t.tar", extra, b"x")
    _refused(settings_for(tmp_path / "new"), path, "outside the places")
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE])
def test_links_and_folders_are_refused(archive: Path, tmp_path: Path, kind: bytes) -> None:
    extra = tarfile.TarInfo("knowledge/kb/link")
    extra.type = kind
    extra.linkname = "/etc/passwd"
    path = _with_extra(archive, tmp_path / "l.tar", extra)
    _refused(settings_for(tmp_path / "new"), path, "not a plain file")


def test_what_is_not_a_backup_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    _refused(settings_for(tmp_path / "new"), text, "not a tar archive")
    foreign = tmp_path / "foreign.tar"
    with tarfile.open(foreign, "w") as tar:
        member = tarfile.TarInfo("knowledge/a/b")
        member.size = 1
        tar.addfile(member, io.BytesIO(b"x"))
    _refused(settings_for(tmp_path / "new"), foreign, "no manifest.json")
    _refused(settings_for(tmp_path / "new"), tmp_path / "absent.tar", "There is no file")


def test_a_backup_of_no_home_says_so(tmp_path: Path) -> None:
    with pytest.raises(BackupRefused, match="There is no IAForAll home"):
        backup_to_file(settings_for(tmp_path / "absent"), tmp_path / "b.tar")
    assert list(tmp_path.iterdir()) == []


def test_a_backup_of_a_newer_schema_is_refused(archive: Path, tmp_path: Path) -> None:
    def newer(member: tarfile.TarInfo, data: bytes) -> bytes:
        if member.name != "manifest.json":
            return data
        body = json.loads(data)
        body["schema_version"] = "9999"
        return json.dumps(body).encode()

    path = _rewritten(archive, tmp_path / "newer.tar", newer)
    _refused(settings_for(tmp_path / "new"), path, "newer than this version knows")


def test_a_sqlite_backup_is_not_restored_onto_postgresql(archive: Path, tmp_path: Path) -> None:
    target = settings_for(tmp_path / "new", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    _refused(target, archive, "holds a sqlite database")


def test_a_disk_without_room_is_refused_before_writing(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = SimpleNamespace(total=10_000_000, used=9_999_999, free=1)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: full)
    _refused(settings_for(tmp_path / "new"), archive, "make room")


def test_a_home_with_data_is_refused_unless_forced(archive: Path, tmp_path: Path) -> None:
    target = settings_for(tmp_path / "new")
    fill(target, conversations=1)
    before = target.database_url.removeprefix("sqlite:///")
    size = Path(before).stat().st_size
    with pytest.raises(BackupRefused) as refused:
        restore(target, archive)
    assert "already holds data (a database, knowledge files)" in refused.value.message
    assert Path(before).stat().st_size == size
    assert restore(target, archive, force=True).files > 0


def test_a_backup_stopped_half_way_leaves_no_complete_looking_file(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "home")
    fill(settings, document_bytes=30_000_000)  # long enough to be killed in the middle
    target = tmp_path / "out" / "b.tar"
    target.parent.mkdir()
    env = {**os.environ, "IAFORALL_HOME": str(settings.store.home)}
    backup = subprocess.Popen(
        [sys.executable, "-m", "iaforall", "backup", str(target)], env=env, stderr=subprocess.PIPE
    )
    partial = partial_of(target)
    deadline = time.monotonic() + 30
    while not (partial.exists() and partial.stat().st_size > 1_000_000):
        assert time.monotonic() < deadline and backup.poll() is None
        time.sleep(0.005)
    backup.send_signal(signal.SIGKILL)
    backup.wait()
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir()] == [partial.name]  # hidden, marked partial
    # the next backup to the same name replaces the leftover, and the killed one's copy of
    # the database is removed from the home
    backup_to_file(settings, target)
    assert [p.name for p in target.parent.iterdir()] == ["b.tar"]
    assert not list(settings.store.home.glob(".backup-*"))
