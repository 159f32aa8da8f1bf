"""Who is asking: an API key, a web session, or (without accounts) the local user.

Unsafe requests from a browser also prove they come from our own page: a same-origin
`Sec-Fetch-Site` (or, from browsers without it, `Origin`), and with a session its CSRF token.
Signing in checks the same, since a session cookie set by another site's form would log the
browser into someone else's account. Without accounts, only loopback host names are served, so a
web page elsewhere cannot reach the local server through DNS rebinding.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from iaforall.core.errors import Forbidden, Unauthorized, UnsupportedMediaType
from iaforall.core.types import LOCAL_PRINCIPAL, Principal
from iaforall.people.secrets import same_digest
from iaforall.services import Services

SESSION_COOKIE = "iaforall_session"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# What a browser's Sec-Fetch-Site says of a request from our own page, or typed by its user.
_OUR_PAGE = {"same-origin", "none"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


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


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of a URL, the default port filled in; None when malformed."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname or "", port or _DEFAULT_PORTS.get(scheme)


def from_another_site(request: Request) -> bool:
    """Whether a browser sent this from a page of another origin. Browsers say so in
    Sec-Fetch-Site, which pages cannot forge; older ones only send Origin, compared with the
    request's own scheme, host and port. Clients that are not browsers (curl, the CLI, SDKs)
    send neither and carry no ambient credentials to abuse, so they pass."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.strip().lower() not in _OUR_PAGE
    origin = request.headers.get("origin")
    if origin is None:
        return False
    own = _origin(f"{request.url.scheme}://{request.headers.get('host', '')}")
    return own is None or own[1] == "" or _origin(origin) != own


def refuse_other_sites(request: Request, doing: str = "change anything here") -> None:
    if from_another_site(request):
        raise Forbidden(
            f"This request comes from another web site, so it was refused: only IAForAll's own "
            f"page may {doing}.",
        )


def require_json(request: Request) -> None:
    """A JSON body, declared as such: a form or `text/plain` is what another site's page can
    send without asking, so a route that opens a session accepts only JSON."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            "Send this request as JSON, with the header Content-Type: application/json (curl: "
            "--json '{...}' or -H 'Content-Type: application/json')."
        )


def _check_origin(request: Request) -> None:
    if request.method not in _SAFE_METHODS:
        refuse_other_sites(request)


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
                "`iaforall keys create --user NAME` or in the web app."
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
