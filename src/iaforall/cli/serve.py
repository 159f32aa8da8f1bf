"""`iaforall serve`."""

from __future__ import annotations

import importlib.util
import logging
import sys

import uvicorn

from iaforall.api.auth import is_loopback_host
from iaforall.app import create_app
from iaforall.policy.rules import RulesFileError
from iaforall.settings import Settings


def exposure_problem(settings: Settings) -> str | None:
    """Why this server must not start as configured, or None."""
    host = settings.server.host
    if settings.people.auth or is_loopback_host(host):
        return None
    return (
        f"Refusing to listen on {host} without accounts: anyone who can reach it could use "
        "the models and read every conversation.\n"
        "  To share this server, turn accounts on:  IAFORALL_AUTH=true iaforall serve "
        f"--host {host}\n"
        "  then create the first admin with `iaforall users create-admin NAME` (or the link "
        "printed at start).\n"
        "  To keep it private to this machine, use --host 127.0.0.1."
    )


def cluster_problem(settings: Settings) -> str | None:
    """What stops `--cluster` before anything starts: Ray missing, or its token."""
    cluster = settings.cluster
    if not cluster.cluster:
        return None
    if not cluster.cluster.startswith("ray://"):
        return f"--cluster takes Ray Client's address, ray://HOST:PORT (not {cluster.cluster!r})."
    if importlib.util.find_spec("ray") is None:
        return "Ray is not installed: pip install 'ray[serve]>=2.50' (on every node too)."
    token = cluster.token_path(settings.store.home)
    if cluster.cluster_auth == "token" and not token.is_file():
        return (
            f"Ray's token authentication is on but there is no token at {token}: copy the "
            "head's `cluster/auth_token` there (mode 0600), or set IAFORALL_CLUSTER_TOKEN_FILE."
        )
    return None


def serve(settings: Settings) -> int:
    problem = exposure_problem(settings) or cluster_problem(settings)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        app = create_app(settings)
    except RulesFileError as exc:
        print(f"iaforall: {exc}", file=sys.stderr)
        return 2
    server = settings.server
    logging.basicConfig(
        level=server.log_level.upper(), format="%(asctime)s %(levelname)s: %(message)s"
    )
    url = f"http://{server.host}:{server.port}"
    print(
        f"IAForAll serving on {url} (default model {server.model}, data in "
        f"{settings.store.home})\n  chat in a browser: {url}/   OpenAI API: {url}/v1",
        flush=True,
    )
    uvicorn.run(
        app,
        host=server.host,
        port=server.port,
        log_level=server.log_level,
        timeout_graceful_shutdown=5,
    )
    return 0
