"""The app shell kept on the device, so the app opens without the server and says so.

The service worker (`/sw.js`, from `web/service-worker.js`) keeps the shell only: the pages,
styles, scripts, catalogues and icons. Answers from /v1, /api, /web/api, /admin/api and the
conversations are never kept. Its cache is named by a hash of the shell's files and the
version, so a release (any change of a file) replaces the old copy at the next visit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from iaforall import __version__
from iaforall.web import STATIC_DIR

# The pages, served by their own routes (api/web/pages.py, api/admin.py, api/policy.py).
PAGES = ("/", "/admin", "/rules")
# What the shell is made of under /static (not the licences, not the notes).
SHELL_SUFFIXES = frozenset({".css", ".js", ".mjs", ".json", ".svg", ".png", ".webmanifest"})
WORKER = STATIC_DIR.parent / "service-worker.js"


@dataclass(frozen=True)
class Shell:
    version: str
    urls: tuple[str, ...]


def read_shell(static: Path) -> Shell:
    """The shell's URLs and a version that changes whenever one of its files does."""
    files = sorted(p for p in static.rglob("*") if p.is_file() and p.suffix in SHELL_SUFFIXES)
    pages = sorted(static.glob("*.html"))
    digest = hashlib.sha256(__version__.encode())
    for path in [*pages, *files]:
        digest.update(path.relative_to(static).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    urls = PAGES + tuple(f"/static/{p.relative_to(static).as_posix()}" for p in files)
    return Shell(f"{__version__}-{digest.hexdigest()[:16]}", urls)


def worker_script(shell: Shell) -> str:
    """The service worker with this shell's version and URLs written in."""
    return (
        WORKER.read_text()
        .replace('"__VERSION__"', json.dumps(shell.version))
        .replace('["__SHELL__"]', json.dumps(list(shell.urls)))
    )
