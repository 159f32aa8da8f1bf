"""The database in and out of a backup, while the server keeps serving: SQLite's backup API
(a consistent snapshot; readers and the writer go on in WAL mode), or pg_dump / psql."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import URL, make_url

from iaforall.core.errors import BackupRefused
from iaforall.settings import child_environment
from iaforall.store.database import Database
from iaforall.store.private import private_file


def backend_of(url: str) -> str:
    return make_url(url).get_backend_name()


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupRefused(f"The database {url} is not a file: there is nothing to back up.")
    return Path(database)


def copy_sqlite(url: str, into: Path) -> None:
    """A consistent copy of the live SQLite database at `into` (made 0600 first), in one step
    of the backup API: a read transaction, so writers go on (WAL) and nothing is half-copied."""
    path = sqlite_path(url)
    if not path.is_file():
        raise BackupRefused(
            f"There is no database at {path}: start the server once (`iaforall serve`) or set "
            "IAFORALL_HOME to the home folder to back up."
        )
    private_file(into)
    source = sqlite3.connect(path, timeout=30)
    target = sqlite3.connect(into)
    try:
        source.backup(target)
        # One self-contained file in the archive; the server turns WAL back on when it opens it.
        target.execute("PRAGMA journal_mode=DELETE")
        problem = target.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        target.close()
        source.close()
    if problem != "ok":
        raise BackupRefused(f"The copy of the database fails SQLite's check: {problem}")


def sqlite_schema_version(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        row = None
    finally:
        connection.close()
    if row is None:
        raise BackupRefused(f"The database {path} has never been set up by IAForAll.")
    return str(row[0])


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for pg_dump and psql, and the environment that carries the
    password (never on a command line, where `ps` shows it)."""
    parsed: URL = make_url(url)
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupRefused(
            f"`{name}` is not installed, and a PostgreSQL database is backed up and restored "
            "with it: install PostgreSQL's client programs (Debian: `apt install "
            "postgresql-client`)."
        )
    return found


def dump_postgresql(url: str, into: Path) -> None:
    """pg_dump's plain SQL of the database at `into` (0600): one consistent snapshot, taken
    while the server goes on."""
    conninfo, env = _libpq(url)
    private_file(into)
    done = subprocess.run(
        [_program("pg_dump"), "--no-owner", "--no-privileges", "--file", str(into), conninfo],
        env=child_environment(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupRefused(f"pg_dump could not copy the database: {done.stderr.strip()}")


def database_is_empty(url: str) -> bool:
    """No table at all (a new database), or no SQLite file yet."""
    if backend_of(url) == "sqlite" and not sqlite_path(url).exists():
        return True
    database = Database(url)
    try:
        with database.engine.connect() as connection:
            return not inspect(connection).get_table_names()
    finally:
        database.close()


def restore_postgresql(url: str, dump: Path) -> None:
    """The dump played into the (empty) database at `url`, all or nothing."""
    conninfo, env = _libpq(url)
    command = [_program("psql"), "--quiet", "--no-psqlrc", "--single-transaction"]
    command += ["--set", "ON_ERROR_STOP=1", "--file", str(dump), conninfo]
    done = subprocess.run(
        command,
        env=child_environment(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupRefused(f"psql could not restore the database: {done.stderr.strip()}")


def place_sqlite(copy: Path, url: str) -> None:
    """The restored database moved in place of the target's (its old WAL files removed)."""
    path = sqlite_path(url)
    for companion in ("-wal", "-shm", "-journal"):
        path.with_name(path.name + companion).unlink(missing_ok=True)
    os.replace(copy, path)
