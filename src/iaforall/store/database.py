"""The database connection: SQLite (WAL) by default, any SQLAlchemy URL otherwise, migrated
to the latest schema by Alembic when the server starts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from iaforall.core.folding import fold
from iaforall.store.extensions import load_sqlite_vec
from iaforall.store.private import private_dir, private_file, tighten

MIGRATIONS = Path(__file__).parent / "migrations"
# SQLite's own LIKE ignores case in ASCII only; searches use this function instead.
FOLD_FUNCTION = "iaforall_fold"


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    if isinstance(connection, sqlite3.Connection):
        cursor = connection.cursor()
        # WAL: readers never wait for the writer; the busy timeout covers writer against writer.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
        connection.create_function(FOLD_FUNCTION, 1, _fold_or_none, deterministic=True)
        load_sqlite_vec(connection)  # vec0 tables: the knowledge index's vectors


def _fold_or_none(text: str | None) -> str | None:
    return None if text is None else fold(text)


def _is_file(database: str) -> bool:
    return database != ":memory:" and not database.startswith("file:")


def _private_sqlite(path: Path) -> None:
    """The database file made 0600 before SQLite opens it: SQLite gives its -wal and -shm
    files the database file's mode, so they are private too."""
    private_dir(path.parent, tighten_existing=False)
    private_file(path)
    for companion in ("-wal", "-shm", "-journal"):  # left by an older version, if any
        tighten(path.with_name(path.name + companion))


def known_schema_versions() -> list[str]:
    """The migrations this code has, oldest first."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    revisions = ScriptDirectory.from_config(config).walk_revisions()
    return [r.revision for r in reversed(list(revisions))]


class Database:
    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            # Sessions are used from the server's worker threads, one at a time each.
            kwargs["connect_args"] = {"check_same_thread": False}
        self.url = url
        # "sqlite", "postgresql"...: what SQL the repositories may write (see Conversations).
        self.backend = parsed.get_backend_name()
        self.is_sqlite = self.backend == "sqlite"
        self.engine: Engine = create_engine(url, **kwargs)
        event.listen(self.engine, "connect", _sqlite_pragmas)
        if self.is_sqlite and parsed.database and _is_file(parsed.database):
            path = Path(parsed.database)
            # made private just before SQLite opens it: a database never used is never made
            event.listen(self.engine, "do_connect", lambda *_: _private_sqlite(path))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to `revision`, the latest migration by default (a no-op when it
        already is)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # Batch mode rebuilds a table by dropping it: with foreign keys on, that drop
                # cascades to every row pointing at it (SQLite's own advice: turn them off, then
                # check). The pragma only takes effect outside a transaction.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            try:
                with connection.begin():
                    config.attributes["connection"] = connection
                    command.upgrade(config, revision)
                    if sqlite:
                        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                        if broken:  # rolled back: the schema stays as it was
                            raise RuntimeError(f"a migration broke foreign keys: {broken[:5]}")
            finally:
                if sqlite:
                    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                    connection.commit()

    def schema_version(self) -> str | None:
        """The migration the schema is at (None: never migrated)."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()
