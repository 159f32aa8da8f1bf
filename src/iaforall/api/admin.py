"""/admin/api: users, their keys and quotas, usage over time, the live queue. Admins only."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from iaforall.api.deps import json_body, require_admin, services
from iaforall.api.openapi import json_doc
from iaforall.api.people import key_json
from iaforall.api.system import cpu_budget, resident_models
from iaforall.core.errors import InvalidRequest
from iaforall.core.types import ROLES, PersonRole
from iaforall.people.accounts import UserView
from iaforall.people.quotas import QuotaOverride, effective, role_quota
from iaforall.services import Services

router = APIRouter(prefix="/admin/api", tags=["admin"], dependencies=[Depends(require_admin)])

ServicesDep = Annotated[Services, Depends(services)]


class QuotaBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens_per_day: int | None = Field(None, ge=0)
    concurrent_requests: int | None = Field(None, ge=0)
    max_context: int | None = Field(None, ge=0)
    storage_mb: int | None = Field(None, ge=0)


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64)
    role: PersonRole = "member"
    password: str = Field(max_length=1024)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: PersonRole | None = None
    disabled: bool | None = None
    password: str | None = Field(None, max_length=1024)
    quota: QuotaBody | None = None


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=100)


def user_json(svc: Services, user: UserView) -> dict[str, Any]:
    quota = effective(role_quota(svc.settings.people, user.role), user.quota)
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
        "quota": asdict(user.quota),  # the user's own; null fields follow the role
        "effective_quota": asdict(quota),
    }


@router.get("/users")
async def list_users(svc: ServicesDep) -> dict[str, Any]:
    users = await run_in_threadpool(svc.accounts.list_users)
    roles = {role: asdict(role_quota(svc.settings.people, role)) for role in ROLES}
    return {"data": [user_json(svc, u) for u in users], "role_quotas": roles}


@router.post("/users", status_code=201, openapi_extra=json_doc(NewUser))
async def create_user(request: Request, svc: ServicesDep) -> dict[str, Any]:
    body = await json_body(request, NewUser)
    async with svc.password_slots.held():  # argon2: 64 MiB and a core each
        user = await run_in_threadpool(
            svc.accounts.create_user, body.name, body.password, body.role
        )
    return user_json(svc, user)


@router.patch("/users/{ref}", openapi_extra=json_doc(UserPatch))
async def update_user(ref: str, request: Request, svc: ServicesDep) -> dict[str, Any]:
    body = await json_body(request, UserPatch)
    target = await run_in_threadpool(svc.accounts.get_user, ref)
    losing_admin = target.role == "admin" and (body.role == "member" or body.disabled)
    if losing_admin and await run_in_threadpool(svc.accounts.admins_left, without=target.id) == 0:
        raise InvalidRequest("This is the last administrator: name another one first.")
    quota = None if body.quota is None else QuotaOverride(**body.quota.model_dump())
    async with svc.password_slots.held():  # a new password is hashed
        user = await run_in_threadpool(
            svc.accounts.update_user,
            target.id,
            role=body.role,
            disabled=body.disabled,
            password=body.password,
            quota=quota,
        )
    return user_json(svc, user)


@router.delete("/users/{ref}", status_code=204)
async def delete_user(ref: str, svc: ServicesDep) -> Response:
    target = await run_in_threadpool(svc.accounts.get_user, ref)
    if (
        target.role == "admin"
        and await run_in_threadpool(svc.accounts.admins_left, without=target.id) == 0
    ):
        raise InvalidRequest("This is the last administrator: name another one first.")
    await run_in_threadpool(svc.accounts.delete_user, target.id)
    return Response(status_code=204)


@router.get("/keys")
async def list_keys(
    svc: ServicesDep, user: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, Any]:
    keys = await run_in_threadpool(svc.accounts.list_keys, user)
    return {"data": [key_json(k) for k in keys]}


@router.post("/users/{ref}/keys", status_code=201, openapi_extra=json_doc(NewKey))
async def create_key(ref: str, request: Request, svc: ServicesDep) -> dict[str, Any]:
    body = await json_body(request, NewKey)
    key, secret = await run_in_threadpool(svc.accounts.create_key, ref, body.name)
    return {**key_json(key), "key": secret}


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, svc: ServicesDep) -> dict[str, Any]:
    return key_json(await run_in_threadpool(svc.accounts.revoke_key, key_id))


@router.get("/usage")
async def usage(
    svc: ServicesDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    user: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Requests and tokens per user, model and UTC day: the data behind the usage chart; and
    what each person keeps on the server against their storage quota."""
    user_id = None if user is None else (await run_in_threadpool(svc.accounts.get_user, user)).id
    rows = await run_in_threadpool(svc.accounts.usage, user_id=user_id, days=days)
    names = {u.id: u.name for u in await run_in_threadpool(svc.accounts.list_users)}
    storage = await run_in_threadpool(svc.storage.everyone)
    return {
        "days": days,
        "data": [{**asdict(r), "user": names.get(r.user_id, r.user_id)} for r in rows],
        "storage": [
            {"user_id": who, "user": names.get(who, who), **use.to_json()}
            for who, use in storage.items()
            if user_id is None or who == user_id
        ],
    }


@router.get("/queue")
async def queue(svc: ServicesDep) -> dict[str, Any]:
    """What runs and waits now: per model, and each request in serving order (who, where)."""
    names = {u.id: u.name for u in await run_in_threadpool(svc.accounts.list_users)}
    places = [{**asdict(p), "name": names.get(p.user, p.user)} for p in svc.scheduler.snapshot()]
    return {
        "queue_length": svc.scheduler.queue_length,
        "models": await resident_models(svc),
        "places": places,
        "cpu_budget": cpu_budget(svc),
    }
