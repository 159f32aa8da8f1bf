"""/web/api/session, /web/api/setup, /web/api/keys: logging in, the first admin, own keys."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from iaforall.api.auth import SESSION_COOKIE, authenticate, refuse_other_sites, require_json
from iaforall.api.deps import json_body, services
from iaforall.api.openapi import json_doc
from iaforall.core.errors import Forbidden, InvalidRequest, TooManyAttempts, Unauthorized
from iaforall.core.types import Principal
from iaforall.people.accounts import KeyView
from iaforall.people.secrets import same_digest
from iaforall.services import Services

router = APIRouter(prefix="/web/api", tags=["people"])

ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]


class Login(BaseModel):
    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class Setup(Login):
    token: str = Field(max_length=200)


class NewKey(BaseModel):
    name: str = Field("", max_length=100)


def _person(principal: Principal) -> dict[str, Any]:
    return {"id": principal.user, "name": principal.name, "role": principal.role}


def key_json(key: KeyView) -> dict[str, Any]:
    return {
        "id": key.id,
        "user_id": key.user_id,
        "name": key.name,
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at and key.last_used_at.isoformat(),
        "revoked_at": key.revoked_at and key.revoked_at.isoformat(),
    }


@router.get("/session")
async def current_session(request: Request, svc: ServicesDep) -> dict[str, Any]:
    """Who the browser is, its CSRF token, and whether the server waits for its first admin."""
    state: dict[str, Any] = {
        "auth": svc.settings.people.auth,
        "setup_required": svc.setup_token is not None,
        "user": None,
        "csrf_token": None,
    }
    if not svc.settings.people.auth:
        principal = await authenticate(request)
        return {**state, "user": _person(principal)}
    token = request.cookies.get(SESSION_COOKIE)
    found = (
        None if token is None else await run_in_threadpool(svc.accounts.session_principal, token)
    )
    if found is not None:
        state.update(user=_person(found[0]), csrf_token=found[1])
    return state


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _logged_in(request: Request, svc: Services, principal: Principal) -> JSONResponse:
    # A new session id at every login: one planted before it is worth nothing after.
    token, csrf = await run_in_threadpool(
        svc.accounts.open_session, principal.user, replacing=request.cookies.get(SESSION_COOKIE)
    )
    response = JSONResponse(
        {"auth": True, "setup_required": False, "user": _person(principal), "csrf_token": csrf}
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(svc.settings.people.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


def _signing_in(request: Request) -> None:
    """Only our own page (or a client that is no browser) may open a session: another site's
    form could otherwise sign a visitor into an account of its choosing (login CSRF)."""
    refuse_other_sites(request, "sign in")
    require_json(request)


def _throttled(svc: Services, name: str | None, address: str) -> None:
    wait = svc.login_limiter.retry_after(name, address)
    if wait:
        raise TooManyAttempts(
            f"Too many failed attempts to sign in from here or for this account. Try again in "
            f"{round(wait)} s.",
            retry_after=wait,
        )


@router.post("/session", openapi_extra=json_doc(Login))
async def log_in(request: Request, svc: ServicesDep) -> Response:
    _signing_in(request)
    body = await json_body(request, Login)
    if not svc.settings.people.auth:
        raise Forbidden("This server has no accounts (IAFORALL_AUTH is off): nothing to log in to.")
    address = _client(request)
    _throttled(svc, body.name, address)
    async with svc.password_slots.held():
        # Counted again once a slot is ours: attempts that waited together must not all pass.
        _throttled(svc, body.name, address)
        user = await run_in_threadpool(svc.accounts.check_password, body.name, body.password)
        if user is None:
            svc.login_limiter.failed(body.name, address)
            raise Unauthorized("Wrong name or password.")
    svc.login_limiter.succeeded(body.name, address)
    return await _logged_in(request, svc, user.principal)


@router.delete("/session", status_code=204)
async def log_out(request: Request, svc: ServicesDep) -> Response:
    refuse_other_sites(request, "sign out")
    token = request.cookies.get(SESSION_COOKIE)
    if token is not None:
        await run_in_threadpool(svc.accounts.close_session, token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/setup", openapi_extra=json_doc(Setup))
async def set_up(request: Request, svc: ServicesDep) -> Response:
    """The first admin, with the one-time token printed at start."""
    _signing_in(request)
    body = await json_body(request, Setup)
    address = _client(request)
    _throttled(svc, None, address)
    expected = svc.setup_token
    if expected is not None and (await run_in_threadpool(svc.accounts.count_users)) > 0:
        svc.setup_token = expected = None  # someone was made meanwhile (the CLI)
    if not body.token.isascii():  # the link's token is URL-safe base64: this one was mangled
        svc.login_limiter.failed(None, address)
        raise InvalidRequest(
            "This setup token is malformed: copy the whole link printed in the server's log "
            "(its token is made of letters, digits, - and _ only).",
            param="token",
        )
    if expected is None or not same_digest(body.token, expected):
        svc.login_limiter.failed(None, address)
        raise Forbidden("This setup link is not valid (it works once, and only before any admin).")
    svc.setup_token = None  # spent now: a second request with it, even at once, is refused
    try:
        async with svc.password_slots.held():
            user = await run_in_threadpool(
                svc.accounts.create_user, body.name, body.password, "admin"
            )
    except BaseException:
        svc.setup_token = expected  # a bad name or password: the link still works
        raise
    await run_in_threadpool(svc.accounts.adopt_local_data, user.id)
    return await _logged_in(request, svc, user.principal)


@router.get("/keys")
async def my_keys(svc: ServicesDep, me: PrincipalDep) -> dict[str, Any]:
    keys = await run_in_threadpool(svc.accounts.list_keys, me.user)
    return {"data": [key_json(k) for k in keys]}


@router.post("/keys", status_code=201, openapi_extra=json_doc(NewKey))
async def new_key(request: Request, svc: ServicesDep, me: PrincipalDep) -> dict[str, Any]:
    """The key is in this answer only: it is stored as a hash."""
    body = await json_body(request, NewKey)
    key, secret = await run_in_threadpool(svc.accounts.create_key, me.user, body.name)
    return {**key_json(key), "key": secret}


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, svc: ServicesDep, me: PrincipalDep) -> dict[str, Any]:
    key = await run_in_threadpool(svc.accounts.revoke_key, key_id, owner=me.user)
    return key_json(key)


@router.get("/usage")
async def my_usage(
    svc: ServicesDep, me: PrincipalDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> dict[str, Any]:
    """The asker's own requests and tokens per model and UTC day, and what they keep on the
    server against their storage quota (admins see everyone's at /admin/api/usage)."""
    rows = await run_in_threadpool(svc.accounts.usage, user_id=me.user, days=days)
    storage = await run_in_threadpool(svc.storage.use, me)
    return {"days": days, "data": [asdict(r) for r in rows], "storage": storage.to_json()}
