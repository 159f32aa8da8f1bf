"""SQLite extensions every connection gets: sqlite-vec (vector search, `vec0` tables).

Python's `sqlite3` can load an extension only when CPython was built with
`--enable-loadable-sqlite-extensions`. Debian's and python.org's builds are; pyenv's default
build (as on our machines) is not, and has no `enable_load_extension`. Then the extension is
loaded through the SQLite C library that `_sqlite3` itself is linked with, called by ctypes on
the connection's own handle: the same two C calls that `enable_load_extension` and
`load_extension` make.
"""

from __future__ import annotations

import ctypes
import functools
import platform
import sqlite3
from typing import Any

import sqlite_vec


class ExtensionError(RuntimeError):
    pass


def load_sqlite_vec(connection: sqlite3.Connection) -> None:
    """Load sqlite-vec into this connection (raises ExtensionError when it cannot)."""
    path = sqlite_vec.loadable_path()
    if hasattr(connection, "enable_load_extension"):
        connection.enable_load_extension(True)
        try:
            connection.load_extension(path)
        finally:
            connection.enable_load_extension(False)
        return
    _load_through_c(connection, path)


@functools.cache
def _library() -> Any:
    if platform.python_implementation() != "CPython":
        raise ExtensionError(
            "This Python's sqlite3 cannot load extensions (sqlite-vec): use CPython built with "
            "--enable-loadable-sqlite-extensions."
        )
    import _sqlite3

    # dlsym on the module's own handle finds the SQLite library it is linked with.
    lib = ctypes.CDLL(_sqlite3.__file__)
    lib.sqlite3_libversion.restype = ctypes.c_char_p
    lib.sqlite3_enable_load_extension.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.sqlite3_enable_load_extension.restype = ctypes.c_int
    lib.sqlite3_load_extension.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_void_p),
    ]
    lib.sqlite3_free.argtypes = [ctypes.c_void_p]
    lib.sqlite3_load_extension.restype = ctypes.c_int
    if lib.sqlite3_libversion().decode() != sqlite3.sqlite_version:
        raise ExtensionError("Cannot find the SQLite library that Python's sqlite3 uses.")
    return lib


def _load_through_c(connection: sqlite3.Connection, path: str) -> None:
    lib = _library()
    # A CPython sqlite3.Connection starts with its `sqlite3 *db`, right after the object header.
    handle = ctypes.c_void_p.from_address(id(connection) + object.__basicsize__).value
    if not handle:
        raise ExtensionError("The SQLite connection is closed.")
    error = ctypes.c_void_p()
    lib.sqlite3_enable_load_extension(handle, 1)
    try:
        code = lib.sqlite3_load_extension(handle, path.encode(), None, ctypes.byref(error))
    finally:
        lib.sqlite3_enable_load_extension(handle, 0)
    if code != 0:
        detail = f"code {code}"
        if error.value:
            detail = ctypes.string_at(error.value).decode(errors="replace")
            lib.sqlite3_free(error)
        raise ExtensionError(f"SQLite could not load sqlite-vec from {path}: {detail}")
