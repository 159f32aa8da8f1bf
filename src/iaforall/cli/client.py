"""Talking to a running server from the CLI."""

from __future__ import annotations

from typing import Any

import httpx

from iaforall.settings import Settings


def server_url(settings: Settings) -> str:
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}"


def running_server(settings: Settings) -> dict[str, Any] | None:
    """The server's /health when one answers, else None (its details only for an admin's key)."""
    try:
        url = f"{server_url(settings)}/health"
        response = httpx.get(url, timeout=1.0, headers=auth_headers(settings))
        health: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return health if response.status_code == 200 and health.get("status") == "ok" else None


def auth_headers(settings: Settings) -> dict[str, str]:
    """The key for a server with accounts, when one is set (IAFORALL_API_KEY)."""
    key = settings.people.api_key
    return {"Authorization": f"Bearer {key}"} if key else {}
