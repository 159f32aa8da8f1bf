"""Admission by person: a request passes its asker's quotas before it takes a place in line,
and what it used is recorded when it ends. Wraps the dispatcher's streams; the scheduler
below never knows about people, only about users and weights."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from iaforall.core.events import Chunk
from iaforall.core.types import GenerationRequest, ModelId, Principal, Usage
from iaforall.people.accounts import Accounts
from iaforall.people.quotas import Quota, check, effective, role_quota, role_weight
from iaforall.scheduling.dispatch import prompt_estimate
from iaforall.settings import PeopleSettings

R = TypeVar("R", bound=GenerationRequest)
T = TypeVar("T")


class Gate:
    def __init__(self, accounts: Accounts, settings: PeopleSettings) -> None:
        self._accounts = accounts
        self._settings = settings
        self._running: Counter[str] = Counter()  # requests running or waiting, per user

    def weight(self, principal: Principal) -> float:
        """Their share when the engines are saturated, by role (fair scheduling)."""
        return role_weight(self._settings, principal.role)

    def running(self, principal: Principal) -> int:
        return self._running[principal.user]

    async def _quota(self, principal: Principal) -> Quota:
        role = role_quota(self._settings, principal.role)
        if not self._settings.auth:
            return role  # the local user has no account row to hold overrides
        user = await asyncio.to_thread(self._accounts.get_user, principal.user)
        return effective(role, user.quota)

    async def admit(self, principal: Principal, request: R) -> R:
        """The request as it will run (weight, a length capped by the context quota), or
        QuotaExceeded naming the quota it would pass. Its model is already resolved."""
        quota = await self._quota(principal)
        request = replace(request, weight=self.weight(principal))
        prompt = prompt_estimate(request)
        max_tokens = request.sampling.max_tokens
        if quota.max_context and max_tokens is None:
            # Unbounded answers are bounded by the quota rather than refused.
            capped = max(1, quota.max_context - prompt)
            request = replace(request, sampling=replace(request.sampling, max_tokens=capped))
            max_tokens = capped
        await self._check(principal, quota, asked_context=prompt + (max_tokens or 0))
        return request

    async def _check(self, principal: Principal, quota: Quota, *, asked_context: int) -> None:
        """QuotaExceeded if one more request of this size would pass a quota."""
        used = 0
        if quota.tokens_per_day:
            used = await asyncio.to_thread(self._accounts.tokens_today, principal.user)
        check(
            quota,
            used_today=used,
            running=self._running[principal.user],
            asked_context=asked_context,
            now=datetime.now(UTC),
        )

    @contextlib.contextmanager
    def _counted(self, principal: Principal) -> Iterator[None]:
        self._running[principal.user] += 1
        try:
            yield
        finally:
            self._running[principal.user] -= 1
            if not self._running[principal.user]:
                del self._running[principal.user]

    def _record(self, principal: Principal, model: str, usage: Usage) -> None:
        self._accounts.record_usage(principal.user, model, usage)

    async def stream(
        self,
        principal: Principal,
        request: GenerationRequest,
        start: Callable[[GenerationRequest], AsyncGenerator[T, None]],
    ) -> AsyncGenerator[T, None]:
        """`start(request)`'s items, once the quotas allow it. A stream cut short records
        the chunks it delivered as its completion tokens (the engine sends no usage then)."""
        admitted = await self.admit(principal, request)
        with self._counted(principal):
            usage: Usage | None = None
            delivered = 0
            items = start(admitted)
            try:
                async for item in items:
                    if isinstance(item, Chunk):
                        if item.usage is not None:
                            usage = item.usage
                        elif not item.usage_only:
                            delivered += 1
                    yield item
            finally:
                # Synchronous (a few ms): a stopped stream ends in a cancellation.
                if usage is None and delivered:
                    usage = Usage(prompt_estimate(admitted), delivered)
                if usage is not None:
                    self._record(principal, admitted.model, usage)
                await items.aclose()

    async def generate(
        self,
        principal: Principal,
        request: GenerationRequest,
        work: Callable[[GenerationRequest], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        admitted = await self.admit(principal, request)
        with self._counted(principal):
            result = await work(admitted)
        counts = result.get("usage") or {}
        usage = Usage(int(counts.get("prompt_tokens", 0)), int(counts.get("completion_tokens", 0)))
        await asyncio.to_thread(self._record, principal, admitted.model, usage)
        return result

    @contextlib.asynccontextmanager
    async def job(
        self, principal: Principal, model: ModelId
    ) -> AsyncIterator[Callable[[Usage], None]]:
        """A job on a runtime (a transcription, a speech): the quotas that apply to it (requests
        running or waiting, tokens per day; a context length means nothing to audio), then
        counted among the person's requests while the block runs. The block reports what it
        used (engines/audio_cost.py says in which unit); that is recorded when it ends, even
        cut short."""
        await self._check(principal, await self._quota(principal), asked_context=0)
        reported: list[Usage] = []
        with self._counted(principal):
            try:
                yield reported.append
            finally:
                if reported:  # synchronous (a few ms): the block may end in a cancellation
                    self._record(principal, model, reported[-1])
