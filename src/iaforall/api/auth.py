"""Who is asking: an API key, a web session, or (without accounts) the local user.

Unsafe requests from a browser also prove they come from our own page: a same-origin
`Origin`, and with a session its CSRF token. Without accounts, only loopback host names are
served, so a web page elsewhere cannot reach the local server through DNS rebinding.
"""

from __future__ import annotations

import ipaddress

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from iaforall.core.errors import Forbidden, Unauthorized
from iaforall.core.types import LOCAL_PRINCIPAL, Principal
from iaforall.people.secrets import same_digest
from iaforall.services import Services

SESSION_COOKIE = "iaforall_session"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def is_loopback_host(host: str) -> bool:
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8080
        name = name[1 : name.find("]")]
    elif name.count(":") == 1:
        name = name.split(":")[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def _check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if request.method in _SAFE_METHODS or origin is None:
        return
    host = request.headers.get("host", "")
    if origin.split("://", 1)[-1] != host:
        raise Forbidden(
            "This request comes from another web site, so it was refused: only IAForAll's own "
            "page may change anything here.",
        )


async def authenticate(request: Request) -> Principal:
    """The principal of this request (computed once), or 401/403 in the OpenAI shape."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    svc = _services(request)
    if not svc.settings.people.auth:
        if not is_loopback_host(request.headers.get("host", "")):
            raise Forbidden(
                "Without accounts this server only answers on its loopback address. Enable "
                "accounts (IAFORALL_AUTH=true) to share it."
            )
        _check_origin(request)
        principal = LOCAL_PRINCIPAL
    else:
        principal = await _with_accounts(request, svc)
    request.state.principal = principal
    return principal


async def _with_accounts(request: Request, svc: Services) -> Principal:
    key = presented_key(request)
    if key is not None:
        found = await run_in_threadpool(svc.accounts.key_principal, key)
        if found is None:
            raise Unauthorized(
                "Incorrect API key provided: it is unknown or was revoked. Create one with "
                "`iaforall keys create` or in the web app."
            )
        return found
    token = request.cookies.get(SESSION_COOKIE)
    session = (
        None if token is None else await run_in_threadpool(svc.accounts.session_principal, token)
    )
    if session is None:
        raise Unauthorized(
            "This server needs an account: send an API key (Authorization: Bearer …) or log "
            "in to the web app."
        )
    principal, csrf = session
    if request.method not in _SAFE_METHODS:
        _check_origin(request)
        if not same_digest(request.headers.get(CSRF_HEADER, ""), csrf):
            raise Forbidden(
                "The request lacks this session's CSRF token (header X-CSRF-Token). Reload the "
                "page and try again."
            )
    return principal


async def require_admin(request: Request) -> Principal:
    principal = await authenticate(request)
    if not principal.is_admin:
        raise Forbidden("Only an administrator may do this.")
    return principal
