"""Storage by person: what each one keeps on the server (knowledge files, conversation
images), counted from what is stored, and checked against their storage quota before
anything more is stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from iaforall.core.errors import StorageQuotaExceeded
from iaforall.core.types import Principal
from iaforall.people.accounts import Accounts
from iaforall.people.quotas import Quota, effective, role_quota
from iaforall.settings import PeopleSettings
from iaforall.store.database import Database
from iaforall.store.tables import (
    Conversation,
    KnowledgeBase,
    KnowledgeDocument,
    Message,
    MessageImage,
)

MB = 1_000_000


@dataclass(frozen=True)
class StorageUse:
    """Bytes a person keeps, by kind, and what their quota allows (0: no limit)."""

    knowledge_bytes: int = 0
    image_bytes: int = 0
    quota_bytes: int = 0

    @property
    def used_bytes(self) -> int:
        return self.knowledge_bytes + self.image_bytes

    def to_json(self) -> dict[str, int | None]:
        return {
            "used_bytes": self.used_bytes,
            "knowledge_bytes": self.knowledge_bytes,
            "image_bytes": self.image_bytes,
            "quota_bytes": self.quota_bytes or None,  # null: no limit
        }


def megabytes(count: int) -> str:
    """A size for people: "12 KB", "3.4 MB", "1.2 GB"."""
    if count < 1000:
        return f"{count} bytes"
    for unit, size in (("KB", 1000), ("MB", MB), ("GB", 1000 * MB)):
        if count < size * 1000 or unit == "GB":
            return f"{count / size:.1f}".removesuffix(".0") + f" {unit}"
    raise AssertionError("unreachable")


class Storage:
    def __init__(self, database: Database, accounts: Accounts, settings: PeopleSettings):
        self._db = database
        self._accounts = accounts
        self._settings = settings
        # One storing turn per person: two uploads at once cannot both take the last bytes.
        self._turns: dict[str, asyncio.Lock] = {}

    def _quota(self, principal: Principal) -> Quota:
        role = role_quota(self._settings, principal.role)
        if not self._settings.auth:
            return role  # the local user has no account row to hold overrides
        return effective(role, self._accounts.get_user(principal.user).quota)

    def _sums(self, session: Session, owner: str | None) -> dict[str, tuple[int, int]]:
        """(knowledge bytes, image bytes) by owner: sums over the owner index, in SQL."""
        files = (
            select(KnowledgeBase.owner, func.coalesce(func.sum(KnowledgeDocument.size), 0))
            .join(KnowledgeDocument, KnowledgeDocument.kb_id == KnowledgeBase.id)
            .group_by(KnowledgeBase.owner)
        )
        images = (
            select(Conversation.owner, func.coalesce(func.sum(MessageImage.size), 0))
            .join(Message, Message.conversation_id == Conversation.id)
            .join(MessageImage, MessageImage.message_id == Message.id)
            .group_by(Conversation.owner)
        )
        if owner is not None:
            files = files.where(KnowledgeBase.owner == owner)
            images = images.where(Conversation.owner == owner)
        found: dict[str, tuple[int, int]] = {}
        for who, total in session.execute(files):
            found[who] = (int(total), 0)
        for who, total in session.execute(images):
            found[who] = (found.get(who, (0, 0))[0], int(total))
        return found

    def use(self, principal: Principal) -> StorageUse:
        with self._db.session() as session:
            knowledge, images = self._sums(session, principal.user).get(principal.user, (0, 0))
        return StorageUse(knowledge, images, self._quota(principal).storage_mb * MB)

    def everyone(self) -> dict[str, StorageUse]:
        """Each account's use, by user id (for admins; people who store nothing show 0)."""
        with self._db.session() as session:
            sums = self._sums(session, None)
        result = {}
        for user in self._accounts.list_users():
            knowledge, images = sums.get(user.id, (0, 0))
            quota = effective(role_quota(self._settings, user.role), user.quota)
            result[user.id] = StorageUse(knowledge, images, quota.storage_mb * MB)
        return result

    def check(self, principal: Principal, adding: int) -> StorageUse:
        """The person's use if `adding` more bytes fit their quota; else StorageQuotaExceeded
        naming the quota, what is used and what is allowed."""
        use = self.use(principal)
        if use.quota_bytes and use.used_bytes + adding > use.quota_bytes:
            raise StorageQuotaExceeded(
                f"This would pass your storage quota ('storage quota'): you keep "
                f"{megabytes(use.used_bytes)} of the {megabytes(use.quota_bytes)} allowed "
                f"(knowledge files {megabytes(use.knowledge_bytes)}, conversation images "
                f"{megabytes(use.image_bytes)}), and this adds {megabytes(adding)}. Delete "
                "files or conversations you no longer need, or ask an administrator for more."
            )
        return use

    @asynccontextmanager
    async def reserve(self, principal: Principal, adding: int) -> AsyncIterator[None]:
        """Check that `adding` bytes fit (as `check`), and hold the person's storing turn while
        the block stores them (nothing to check when nothing is added)."""
        if adding <= 0:
            yield
            return
        turn = self._turns.setdefault(principal.user, asyncio.Lock())
        async with turn:
            await asyncio.to_thread(self.check, principal, adding)
            yield
