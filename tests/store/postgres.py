"""A real PostgreSQL server for the tests, and databases on both SQLite and PostgreSQL.

A pytest plugin (registered in tests/conftest.py), so any test folder can use:

- `database_url`: the URL of a new, empty database, once on SQLite and once on PostgreSQL
  (the test runs twice, ids `[sqlite]` and `[postgresql]`). For a test of your own tables:

      def test_keys_are_stored(database_url: str) -> None:
          database = Database(database_url)
          database.upgrade()
          ...

- `any_database`: the same, already migrated to the latest schema: a `Database` to use directly
  (closed after the test).
- `postgres_url`: a new, empty database on PostgreSQL only.
- `postgres`: the server itself (session-wide); `postgres.new_database()` gives the URL of
  another empty database, `postgres.drop(url)` drops it.

The server is started once per test session, only if a test asks for it: `initdb` into a
temporary directory, listening on 127.0.0.1 on a free port (and a Unix socket in that
directory), trust authentication, fsync off. Each test gets a database of its own, dropped after
it: a schema of its own in one test database, first on its connections' search path, so
migrations and queries that name no schema (as ours do) see nothing else.
The server is stopped at the end of the session, by its own data directory: other PostgreSQL
servers on the machine are never touched. When running as root, the server runs as the
`postgres` system user (PostgreSQL refuses to run as root).

PostgreSQL must be installed (Debian `postgresql`; `scripts/install-system-deps.sh` as root):
without it the PostgreSQL tests fail, they are not skipped.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iaforall.store.database import Database

INSTALL_HINT = (
    "PostgreSQL is not installed, and the tests need a real PostgreSQL server. Install it with "
    "`sudo bash scripts/install-system-deps.sh` (Debian package `postgresql`)."
)
BACKENDS = ["sqlite", "postgresql"]
DATABASE = "iaforall_test"


def _binaries() -> Path:
    """The directory of the newest installed PostgreSQL's initdb, pg_ctl and postgres."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    pytest.fail(INSTALL_HINT, pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresServer:
    """One throwaway PostgreSQL server in `base` (data, socket and log all inside it)."""

    def __init__(self, base: Path, binaries: Path) -> None:
        self.base = base
        self.binaries = binaries
        self.data = base / "data"
        self.log = base / "server.log"
        self.port = _free_port()
        self._names = itertools.count(1)
        self._stopped = False
        self.startup_seconds = 0.0
        # PostgreSQL refuses to run as root: then it runs as the user Debian's package made.
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(
                    "Running as root, but there is no `postgres` system user to run the test "
                    "PostgreSQL server as. " + INSTALL_HINT,
                    pytrace=False,
                )
            os.chown(base, account.pw_uid, account.pw_gid)
            self._as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            args, cwd=self.base, capture_output=True, text=True, check=False, **self._as
        )
        if done.returncode != 0:
            log = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}\n{log}")

    def start(self) -> None:
        started = time.monotonic()
        self._run(
            str(self.binaries / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
            "--no-instructions",
        )  # fmt: skip
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories='{self.base}'",
                # A throwaway server: durability is not what the tests test.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                "-c shared_buffers=16MB",
            ]
        )
        self._run(
            str(self.binaries / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", "30", "start",
        )  # fmt: skip
        self._run(
            str(self.binaries / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
            "-U", "postgres", DATABASE,
        )  # fmt: skip
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if (self.data / "postmaster.pid").exists():
            self._run(
                str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"
            )
        shutil.rmtree(self.base, ignore_errors=True)

    def _admin(self, *statements: str) -> None:
        import psycopg

        conninfo = f"host=127.0.0.1 port={self.port} user=postgres dbname={DATABASE}"
        with psycopg.connect(conninfo, autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)  # type: ignore[arg-type]

    def new_database(self) -> str:
        """The SQLAlchemy URL of a new, empty database of one's own: a schema of the test
        database, first on the connections' search path (a schema takes milliseconds to make,
        a database a few hundred)."""
        name = f"test_{next(self._names)}"
        self._admin(f"CREATE SCHEMA {name}")
        return (
            f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"
            f"?application_name={name}&options=-csearch_path%3D{name}"
        )

    def drop(self, url: str) -> None:
        """Drop what `new_database` made, closing the connections the test left open."""
        name = url.rsplit("application_name=", 1)[1].split("&", 1)[0]
        self._admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE application_name = '{name}'",
            f"DROP SCHEMA {name} CASCADE",
        )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole session (see the module's docstring)."""
    binaries = _binaries()
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="iaforall-pg-")), binaries)
    atexit.register(server.stop)  # even if the session ends without finalising fixtures
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    url = postgres.new_database()
    yield url
    postgres.drop(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database: the test runs on SQLite (a file in its tmp_path,
    WAL) and again on the real PostgreSQL server (a database of its own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'iaforall.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def any_database(database_url: str) -> Iterator[Database]:
    """A `Database` migrated to the latest schema, on SQLite and on PostgreSQL in turn."""
    database = Database(database_url)
    database.upgrade()
    yield database
    database.close()
