"""`iaforall backup` then `iaforall restore` into another home gives back every row and file,
private; on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import stat
import tarfile
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from iaforall.backup.files import backup_to_file, last_backup
from iaforall.backup.restore import restore
from iaforall.cli.main import main
from iaforall.settings import Settings
from iaforall.store.conversations import Conversations, NewMessage
from iaforall.store.database import Database, known_schema_versions
from tests.backup.homes import RULES, contents, fill, new_postgresql_database, settings_for
from tests.store.postgres import PostgresServer


def _pair(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> tuple[Settings, Settings]:
    if backend == "sqlite":
        urls = ("", "")
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        urls = (
            new_postgresql_database(server, "backup_source"),
            new_postgresql_database(server, "backup_target"),
        )
    return (
        settings_for(tmp_path / "old", urls[0], tmp_path / "rules.toml"),
        settings_for(tmp_path / "new", urls[1]),
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_backup_restores_every_row_and_file(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    old, new = _pair(tmp_path, backend, request)
    fill(old)
    archive = tmp_path / "b.tar"
    told: list[tuple[str, int, int]] = []
    summary = backup_to_file(old, archive, lambda *event: told.append(event))

    # progress: the database first, then each file, bytes done growing up to the total
    assert told[0][0] == "copying the database"
    done = [completed for _, completed, _ in told[1:]]
    assert done == sorted(done) and told[-1][1] == told[-1][2] == summary.size
    assert any(text.startswith("backing up knowledge/") for text, _, _ in told)

    assert archive.is_file() and stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert names[-1] == "manifest.json"
    assert manifest["schema_version"] == known_schema_versions()[-1]
    assert {f["path"] for f in manifest["files"]} == set(names[:-1])
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    assert not any(n.startswith("models/") for n in names)  # model files are pulled again
    assert manifest["models"][0]["command"].startswith("iaforall pull hf://owner/repo/tiny.gguf")
    assert summary.files == len(names) - 1
    assert last_backup(old) is not None

    restored = restore(new, archive)

    assert contents(new) == contents(old)
    assert restored.rules == new.store.home / "rules.toml"
    assert restored.rules.read_bytes() == RULES
    assert [m.name for m in restored.models_to_pull] == ["tiny:latest"]
    for path in [new.store.home, *new.store.home.rglob("*")]:
        if path.name.endswith("-shm") or path.name.endswith("-wal"):
            continue
        want = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == want, path
    database = Database(new.database_url)
    try:
        assert database.schema_version() == known_schema_versions()[-1]
        # the audit log's triggers came back with it
        with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as connection:
            connection.execute(text("DELETE FROM audit_log"))
    finally:
        database.close()


def test_the_commands_back_up_rotate_and_restore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = settings_for(tmp_path / "old")
    fill(old)
    folder = tmp_path / "backups"
    folder.mkdir()
    monkeypatch.setenv("IAFORALL_HOME", str(old.store.home))
    for name in ("iaforall-backup-20200101T000000Z.tar", "iaforall-backup-20200102T000000Z.tar"):
        (folder / name).write_bytes(b"old")
    (folder / "keep-me.tar").write_bytes(b"not a timed backup")

    assert main(["backup", str(folder), "--keep", "2"]) == 0

    kept = sorted(p.name for p in folder.iterdir())
    assert kept[0] == "iaforall-backup-20200102T000000Z.tar" and kept[-1] == "keep-me.tar"
    assert len(kept) == 3 and not any(n.startswith(".") for n in kept)
    out = capsys.readouterr().out
    assert "Backed up" in out and "Removed the older backup" in out

    monkeypatch.setenv("IAFORALL_HOME", str(tmp_path / "new"))
    assert main(["restore", str(folder / kept[1])]) == 0
    out = capsys.readouterr().out
    assert "Restored" in out and "iaforall pull hf://owner/repo/tiny.gguf" in out
    assert contents(settings_for(tmp_path / "new")) == contents(old)

    # a second restore into the now filled home is refused, unless told
    assert main(["restore", str(folder / kept[1])]) == 1
    assert "already holds data" in capsys.readouterr().err
    assert main(["restore", "--force", str(folder / kept[1])]) == 0


def test_a_backup_while_the_database_is_written_is_consistent(tmp_path: Path) -> None:
    """Conversations written without pause while the backup runs: the copy holds a moment of
    the database, each conversation whole (both its messages) or not at all."""
    old, new = settings_for(tmp_path / "old"), settings_for(tmp_path / "new")
    fill(old, conversations=1)
    database = Database(old.database_url)
    store = Conversations(database)
    stop = threading.Event()
    written = [0]

    def write() -> None:
        while not stop.is_set():
            store.create(
                "writer",
                title=f"live {written[0]}",
                messages=[NewMessage("user", "q" * 2000), NewMessage("assistant", "a" * 2000)],
            )
            written[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while written[0] < 20:
            time.sleep(0.01)
        before = written[0]
        backup_to_file(old, tmp_path / "live.tar")
        after = written[0]
    finally:
        stop.set()
        writer.join()
        database.close()
    assert after > before, "the writer went on during the backup"

    restore(new, tmp_path / "live.tar")
    copy = sqlite3.connect(new.store.home / "iaforall.db")
    try:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        counts = copy.execute(
            "SELECT c.id, count(m.id) FROM conversations c JOIN messages m "
            "ON m.conversation_id = c.id WHERE c.owner = 'writer' GROUP BY c.id"
        ).fetchall()
    finally:
        copy.close()
    assert before <= len(counts) <= after
    assert {n for _, n in counts} == {2}


def test_a_backup_of_an_older_schema_is_migrated_on_restore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = settings_for(tmp_path / "old")
    old.store.home.mkdir()
    database = Database(old.database_url)
    try:
        database.upgrade("0005")  # made by an older IAForAll
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO conversations (id, owner, title, system_prompt, settings, "
                    "created_at, updated_at) VALUES ('c1', 'local', 'Old', '', '{}', "
                    "'2026-11-29 12:00:00', '2026-11-29 12:00:00')"
                )
            )
    finally:
        database.close()
    backup_to_file(old, tmp_path / "old.tar")

    monkeypatch.setenv("IAFORALL_HOME", str(tmp_path / "new"))
    assert main(["restore", str(tmp_path / "old.tar")]) == 0
    head = known_schema_versions()[-1]
    assert f"migrated from schema 0005 to {head}" in capsys.readouterr().out
    new = settings_for(tmp_path / "new")
    database = Database(new.database_url)
    try:
        assert database.schema_version() == head
        view = Conversations(database).get("local", "c1")  # type: ignore[arg-type]
        assert view.title == "Old" and view.knowledge_files == ()
    finally:
        database.close()
