"""The backup archive's format: a tar of the home's people's files and a copy of the database,
then `manifest.json` (last: it holds every file's sha256, known once the file is written).

    database/iaforall.db        SQLite: a consistent copy made by SQLite's backup API
    database/postgresql.sql     PostgreSQL: pg_dump's plain SQL
    knowledge/<base>/<document> uploaded knowledge files as uploaded (their index is in the
                                database)
    manifests/<model>.json      the model store's manifests (not the models: `pull` them again)
    rules/<name>                the published content rules file
    manifest.json               format, versions, and every file above with its size and sha256
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

from iaforall.core.errors import BackupRefused

FORMAT = "iaforall-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_MAX_BYTES = 64_000_000
SQLITE_MEMBER = "database/iaforall.db"
POSTGRESQL_MEMBER = "database/postgresql.sql"
# What a backup may hold besides its manifest: anything else makes it foreign.
TOP_LEVEL = ("database", "knowledge", "manifests", "rules")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ModelToPull:
    """A model the backup's manifests name, and the command that brings its file back."""

    name: str
    file: str  # in models/
    source: str
    sha256: str
    command: str


@dataclass(frozen=True, slots=True)
class Manifest:
    iaforall_version: str
    created_at: str
    database_backend: str  # sqlite | postgresql
    schema_version: str
    files: list[FileEntry]
    models: list[ModelToPull] = field(default_factory=list)

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **asdict(self),
            "not_included": (
                "model files: each model in `models` is fetched again with its `command`"
            ),
        }
        return json.dumps(body, indent=1, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """The manifest, or BackupRefused saying why this is not an IAForAll backup."""
        try:
            body = json.loads(data)
            if not isinstance(body, dict) or body.get("format") != FORMAT:
                raise BackupRefused("Its manifest.json is not an IAForAll backup's.")
            if body.get("format_version") != FORMAT_VERSION:
                raise BackupRefused(
                    f"It is in backup format {body.get('format_version')!r}; this version of "
                    f"IAForAll reads format {FORMAT_VERSION}. Restore it with the version that "
                    f"made it ({body.get('iaforall_version', 'unknown')})."
                )
            files = [
                FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in body["files"]
            ]
            models = [ModelToPull(**m) for m in body.get("models", [])]
            manifest = cls(
                str(body["iaforall_version"]),
                str(body["created_at"]),
                str(body["database_backend"]),
                str(body["schema_version"]),
                files,
                models,
            )
        except BackupRefused:
            raise
        except (ValueError, KeyError, TypeError) as e:
            raise BackupRefused(f"Its manifest.json cannot be read ({e}).") from None
        for entry in files:
            check_member_name(entry.path)
            if not _SHA256.fullmatch(entry.sha256) or entry.size < 0:
                raise BackupRefused(f"Its manifest.json lists {entry.path} with a bad checksum.")
        return manifest


def check_member_name(name: str) -> PurePosixPath:
    """`name` as a relative path inside one of the archive's folders, or BackupRefused (an
    absolute path, '..', or a place a backup never writes to)."""
    path = PurePosixPath(name)
    if (
        not name
        or path.is_absolute()
        or "\\" in name
        or any(part in ("", ".", "..") for part in name.split("/"))
        or len(path.parts) < 2
        or path.parts[0] not in TOP_LEVEL
        or (path.parts[0] == "database" and name not in (SQLITE_MEMBER, POSTGRESQL_MEMBER))
        or (path.parts[0] == "rules" and len(path.parts) != 2)
    ):
        raise BackupRefused(
            f"It holds '{name}', a path outside the places a backup restores to: it was not made "
            "by `iaforall backup`, or was changed since."
        )
    return path


def pull_command(name: str, source: str, sha256: str) -> str:
    """The command that brings a model's file back, from its manifest's `source`."""
    kind, _, where = source.partition(":")
    if kind == "packaged":
        return f"iaforall pull {where}"
    if kind == "copy":
        return f"iaforall cp {where} {name}"
    fetched = {"hf": f"hf://{where}", "url": where, "file": where}.get(kind, source)
    return f"iaforall pull {fetched} --name {name} --sha256 {sha256}"
