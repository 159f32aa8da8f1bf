"""Quotas: what a user may use, from their role's defaults and their own overrides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from iaforall.core.errors import QuotaExceeded
from iaforall.core.types import PersonRole
from iaforall.settings import PeopleSettings


@dataclass(frozen=True, slots=True)
class Quota:
    """0 means no limit."""

    tokens_per_day: int = 0
    concurrent_requests: int = 0
    max_context: int = 0
    storage_mb: int = 0  # knowledge files and conversation images kept on the server


def role_quota(settings: PeopleSettings, role: PersonRole) -> Quota:
    if role == "admin":
        return Quota(
            settings.admin_tokens_per_day,
            settings.admin_concurrent_requests,
            settings.admin_max_context,
            settings.admin_storage_mb,
        )
    return Quota(
        settings.member_tokens_per_day,
        settings.member_concurrent_requests,
        settings.member_max_context,
        settings.member_storage_mb,
    )


def role_weight(settings: PeopleSettings, role: PersonRole) -> float:
    return settings.admin_weight if role == "admin" else settings.member_weight


@dataclass(frozen=True, slots=True)
class QuotaOverride:
    """A user's own limits; None keeps the role's."""

    tokens_per_day: int | None = None
    concurrent_requests: int | None = None
    max_context: int | None = None
    storage_mb: int | None = None


def effective(role: Quota, own: QuotaOverride | None) -> Quota:
    if own is None:
        return role
    return Quota(
        role.tokens_per_day if own.tokens_per_day is None else own.tokens_per_day,
        role.concurrent_requests if own.concurrent_requests is None else own.concurrent_requests,
        role.max_context if own.max_context is None else own.max_context,
        role.storage_mb if own.storage_mb is None else own.storage_mb,
    )


def seconds_to_midnight(now: datetime) -> float:
    tomorrow = (now.astimezone(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return (tomorrow - now).total_seconds()


def check(
    quota: Quota,
    *,
    used_today: int,
    running: int,
    asked_context: int,
    now: datetime,
) -> None:
    """Pure: raise QuotaExceeded naming the first quota this request would pass."""
    if quota.max_context and asked_context > quota.max_context:
        raise QuotaExceeded(
            f"This request asks for up to {asked_context} tokens of context, over your quota of "
            f"{quota.max_context} ('max context'). Ask for fewer tokens (max_tokens) or send a "
            "shorter conversation.",
            retry_after=seconds_to_midnight(now),
            quota="max_context",
        )
    if quota.concurrent_requests and running >= quota.concurrent_requests:
        raise QuotaExceeded(
            f"You already have {running} request(s) running or waiting, your quota "
            f"('concurrent requests') is {quota.concurrent_requests}. Wait for one to finish.",
            retry_after=2,
            quota="concurrent_requests",
        )
    if quota.tokens_per_day and used_today >= quota.tokens_per_day:
        raise QuotaExceeded(
            f"You have used your {quota.tokens_per_day} tokens for today ('tokens per day'). "
            "The quota starts again at midnight UTC.",
            retry_after=seconds_to_midnight(now),
            quota="tokens_per_day",
        )
