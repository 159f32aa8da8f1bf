"""`iaforall backup [FILE]` and `iaforall restore FILE` (see docs/backup.md)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.filesize import decimal

from iaforall.cli.models import _ProgressBar
from iaforall.core.errors import IAForAllError
from iaforall.settings import Settings


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = commands.add_parser(
        "backup",
        help="one archive of the database, knowledge files, rules and model manifests",
        description="Back up what is people's on this server, while it keeps serving. Model "
        "files are not included: the archive's manifest names the commands that pull them.",
    )
    backup.add_argument(
        "file",
        nargs="?",
        type=Path,
        help="the archive to write, or a folder for a timed name (default: the current folder)",
    )
    backup.add_argument(
        "--keep",
        type=int,
        metavar="N",
        help="then keep only the N newest timed backups in that folder (for a cron line)",
    )
    restore = commands.add_parser(
        "restore",
        help="restore a backup into an empty home, checking every file first",
        description="Restore a backup made by `iaforall backup` into IAFORALL_HOME (and "
        "IAFORALL_DATABASE_URL), then migrate its database to this version's schema.",
    )
    restore.add_argument("file", type=Path, help="the archive made by `iaforall backup`")
    restore.add_argument(
        "--force",
        "--into-nonempty",
        action="store_true",
        help="replace the database, knowledge files and rules the home already holds",
    )


def run_backup(settings: Settings, args: argparse.Namespace) -> int:
    from iaforall.backup.files import backup_to_file, rotate, target_of

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if args.keep is not None and args.keep < 1:
        err.print("error: --keep needs a number of backups of 1 or more.", style="red")
        return 2
    target = target_of(args.file)
    progress = _ProgressBar(err)
    started = time.monotonic()
    try:
        summary = backup_to_file(settings, target, progress)
    except (IAForAllError, OSError) as e:
        progress.close()
        err.print(f"error: {getattr(e, 'message', e)}", style="red", markup=False)
        return 1
    finally:
        progress.close()
    out = Console(highlight=False, soft_wrap=True)
    out.print(
        f"Backed up {summary.files} files ({decimal(summary.size)}, database schema "
        f"{summary.schema_version}) in {time.monotonic() - started:.1f} s: {target}",
        markup=False,
    )
    if summary.models:
        named = "1 model is" if len(summary.models) == 1 else f"{len(summary.models)} models are"
        out.print(
            f"Model files are not in the backup; {named} named in it with the command that "
            "pulls it again.",
            markup=False,
        )
    if args.keep is not None:
        for old in rotate(target.parent, args.keep):
            out.print(f"Removed the older backup {old}", markup=False)
    return 0


def run_restore(settings: Settings, args: argparse.Namespace) -> int:
    from iaforall.backup.restore import restore

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    progress = _ProgressBar(err)
    try:
        summary = restore(settings, args.file, force=args.force, progress=progress)
    except (IAForAllError, OSError) as e:
        progress.close()
        message = getattr(e, "message", e)
        err.print(f"error: {args.file} was not restored. {message}", style="red", markup=False)
        return 1
    finally:
        progress.close()
    out = Console(highlight=False, soft_wrap=True)
    migrated = (
        f", migrated from schema {summary.schema_from} to {summary.schema_to}"
        if summary.schema_from != summary.schema_to
        else ""
    )
    out.print(
        f"Restored {summary.files} files ({decimal(summary.size)}) of a backup made by "
        f"IAForAll {summary.iaforall_version} into {settings.store.home}{migrated}.",
        markup=False,
    )
    if summary.rules is not None and settings.policy.rules_file is None:
        out.print(
            f"The content rules are in {summary.rules}: set IAFORALL_RULES_FILE={summary.rules} "
            "to publish them again.",
            markup=False,
        )
    if summary.models_to_pull:
        out.print("Model files are not in backups; pull these again:", markup=False)
        for model in summary.models_to_pull:
            out.print(f"  {model.command}", markup=False)
    return 0
