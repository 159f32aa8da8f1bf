"""Accounts on the database: users, web sessions, API keys, quotas and usage."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from iaforall.core.errors import Conflict, InvalidRequest, NotFound
from iaforall.core.types import LOCAL_USER, ROLES, PersonRole, Principal, Usage, UserId
from iaforall.people.quotas import QuotaOverride
from iaforall.people.secrets import (
    MIN_PASSWORD,
    digest,
    hash_password,
    new_api_key,
    new_token,
    same_digest,
    split_api_key,
    verify_password,
)
from iaforall.store.accounts import ApiKey, UsageEvent, User, UserQuota, WebSession
from iaforall.store.database import Database
from iaforall.store.tables import Conversation, utcnow

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class UserView:
    id: str
    name: str
    role: PersonRole
    disabled: bool
    created_at: datetime
    quota: QuotaOverride

    @property
    def principal(self) -> Principal:
        return Principal(UserId(self.id), self.name, self.role)


@dataclass(frozen=True)
class KeyView:
    id: str
    user_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class UsageRow:
    user_id: str
    model: str
    day: str
    requests: int
    prompt_tokens: int
    completion_tokens: int


def _role(role: str) -> PersonRole:
    if role not in ROLES:
        raise InvalidRequest(f"The role '{role}' does not exist: use one of {', '.join(ROLES)}.")
    return role


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(
            f"The password is too short: use at least {MIN_PASSWORD} characters.",
            param="password",
        )


def _user_view(user: User, quota: UserQuota | None) -> UserView:
    own = QuotaOverride()
    if quota is not None:
        own = QuotaOverride(
            quota.tokens_per_day, quota.concurrent_requests, quota.max_context, quota.storage_mb
        )
    return UserView(user.id, user.name, _role(user.role), user.disabled, user.created_at, own)


def _key_view(key: ApiKey) -> KeyView:
    return KeyView(key.id, key.user_id, key.name, key.created_at, key.last_used_at, key.revoked_at)


class Accounts:
    def __init__(self, database: Database, session_hours: float) -> None:
        self._db = database
        self._session_length = timedelta(hours=session_hours)

    # Users ------------------------------------------------------------------------------

    def count_users(self) -> int:
        with self._db.session() as session:
            return int(session.scalar(select(func.count()).select_from(User)) or 0)

    def create_user(self, name: str, password: str | None, role: str = "member") -> UserView:
        if not _NAME.match(name):
            raise InvalidRequest(
                "A user name is 1 to 64 letters, digits, or . _ @ - (starting with a letter or "
                "digit).",
                param="name",
            )
        if password is not None:
            _check_password(password)
        with self._db.session() as session:
            taken = session.scalar(select(User.id).where(func.lower(User.name) == name.lower()))
            if taken is not None:
                raise Conflict(f"There is already a user named '{name}'.")
            user = User(
                id=uuid.uuid4().hex,
                name=name,
                role=_role(role),
                password_hash=None if password is None else hash_password(password),
                disabled=False,
                created_at=utcnow(),
            )
            session.add(user)
            session.flush()
            return _user_view(user, None)

    def adopt_local_data(self, user_id: str) -> int:
        """Give the conversations of the local single-user mode to this user."""
        with self._db.session() as session:
            result = session.execute(
                update(Conversation).where(Conversation.owner == LOCAL_USER).values(owner=user_id)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def list_users(self) -> list[UserView]:
        with self._db.session() as session:
            rows = session.execute(
                select(User, UserQuota)
                .outerjoin(UserQuota, UserQuota.user_id == User.id)
                .order_by(User.created_at)
            ).all()
            return [_user_view(user, quota) for user, quota in rows]

    def _find(self, session: Any, ref: str) -> User:
        user = session.scalar(
            select(User).where((User.id == ref) | (func.lower(User.name) == ref.lower()))
        )
        if user is None:
            raise NotFound(f"There is no user '{ref}'.")
        return user  # type: ignore[no-any-return]

    def get_user(self, ref: str) -> UserView:
        """By id or by name."""
        with self._db.session() as session:
            user = self._find(session, ref)
            return _user_view(user, session.get(UserQuota, user.id))

    def update_user(
        self,
        ref: str,
        *,
        role: str | None = None,
        disabled: bool | None = None,
        password: str | None = None,
        quota: QuotaOverride | None = None,
    ) -> UserView:
        with self._db.session() as session:
            user = self._find(session, ref)
            if role is not None:
                user.role = _role(role)
            if disabled is not None:
                user.disabled = disabled
            if password is not None:
                _check_password(password)
                user.password_hash = hash_password(password)
            if password is not None or disabled:
                # A new password or a disabled account ends every session it had.
                session.query(WebSession).filter(WebSession.user_id == user.id).delete()
            own = session.get(UserQuota, user.id)
            if quota is not None:
                if own is None:
                    own = UserQuota(user_id=user.id)
                    session.add(own)
                own.tokens_per_day = quota.tokens_per_day
                own.concurrent_requests = quota.concurrent_requests
                own.max_context = quota.max_context
                own.storage_mb = quota.storage_mb
            session.flush()
            return _user_view(user, own)

    def delete_user(self, ref: str) -> None:
        with self._db.session() as session:
            session.delete(self._find(session, ref))

    def admins_left(self, *, without: str) -> int:
        with self._db.session() as session:
            query = select(func.count()).where(
                User.role == "admin", User.disabled.is_(False), User.id != without
            )
            return int(session.scalar(query) or 0)

    # Passwords and sessions ---------------------------------------------------------------

    def check_password(self, name: str, password: str) -> UserView | None:
        with self._db.session() as session:
            user = session.scalar(select(User).where(func.lower(User.name) == name.lower()))
            ok = verify_password(None if user is None else user.password_hash, password)
            if user is None or not ok or user.disabled:
                return None
            return _user_view(user, None)

    def open_session(self, user_id: str, *, replacing: str | None = None) -> tuple[str, str]:
        """A new session (token, CSRF token); the one it replaces, if any, ends."""
        token, csrf = new_token(), new_token()
        now = utcnow()
        with self._db.session() as session:
            if replacing:
                session.query(WebSession).filter(
                    WebSession.token_hash == digest(replacing)
                ).delete()
            session.add(
                WebSession(
                    token_hash=digest(token),
                    user_id=user_id,
                    csrf_token=csrf,
                    created_at=now,
                    expires_at=now + self._session_length,
                )
            )
        return token, csrf

    def session_principal(self, token: str) -> tuple[Principal, str] | None:
        """(who, their CSRF token) for a live session token, else None."""
        with self._db.session() as session:
            row = session.execute(
                select(WebSession, User)
                .join(User, User.id == WebSession.user_id)
                .where(WebSession.token_hash == digest(token))
            ).first()
            if row is None:
                return None
            web_session, user = row
            if web_session.expires_at <= datetime.now(UTC) or user.disabled:
                session.delete(web_session)
                return None
            return _user_view(user, None).principal, web_session.csrf_token

    def close_session(self, token: str) -> None:
        with self._db.session() as session:
            session.query(WebSession).filter(WebSession.token_hash == digest(token)).delete()

    # API keys ---------------------------------------------------------------------------

    def create_key(self, user_ref: str, name: str) -> tuple[KeyView, str]:
        """The key's record and the key itself, which is shown this once and never stored."""
        name = name.strip() or "key"
        if len(name) > 100:
            raise InvalidRequest("A key's name is at most 100 characters.", param="name")
        key_id, key, secret_digest = new_api_key()
        with self._db.session() as session:
            user = self._find(session, user_ref)
            row = ApiKey(
                id=key_id,
                user_id=user.id,
                name=name,
                secret_hash=secret_digest,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return _key_view(row), key

    def list_keys(self, user_ref: str | None = None) -> list[KeyView]:
        with self._db.session() as session:
            query = select(ApiKey).order_by(ApiKey.created_at)
            if user_ref is not None:
                query = query.where(ApiKey.user_id == self._find(session, user_ref).id)
            return [_key_view(k) for k in session.scalars(query)]

    def revoke_key(self, key_id: str, *, owner: str | None = None) -> KeyView:
        """Revoke a key; with `owner`, only one of theirs (others look like missing)."""
        with self._db.session() as session:
            key = session.get(ApiKey, key_id)
            if key is None or (owner is not None and key.user_id != owner):
                raise NotFound(f"There is no key '{key_id}'.")
            if key.revoked_at is None:
                key.revoked_at = utcnow()
            return _key_view(key)

    def key_principal(self, key: str) -> Principal | None:
        parts = split_api_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        with self._db.session() as session:
            row = session.execute(
                select(ApiKey, User)
                .join(User, User.id == ApiKey.user_id)
                .where(ApiKey.id == key_id)
            ).first()
            expected = digest("") if row is None else row[0].secret_hash
            matches = same_digest(digest(secret), expected)
            if row is None or not matches:
                return None
            api_key, user = row
            if api_key.revoked_at is not None or user.disabled:
                return None
            api_key.last_used_at = utcnow()
            return _user_view(user, None).principal

    # Usage --------------------------------------------------------------------------------

    def record_usage(self, user_id: str, model: str, usage: Usage) -> None:
        with self._db.session() as session:
            session.add(
                UsageEvent(
                    user_id=user_id,
                    model=model,
                    at=utcnow(),
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                )
            )

    def tokens_today(self, user_id: str, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        with self._db.session() as session:
            total = session.scalar(
                select(
                    func.coalesce(
                        func.sum(UsageEvent.prompt_tokens + UsageEvent.completion_tokens), 0
                    )
                ).where(UsageEvent.user_id == user_id, UsageEvent.at >= midnight)
            )
            return int(total or 0)

    def usage(self, *, user_id: str | None = None, days: int = 30) -> list[UsageRow]:
        """Requests and tokens per user, model and UTC day, over the last `days` days."""
        since = datetime.now(UTC) - timedelta(days=days)
        # Summed here rather than in SQL: day functions differ between SQLite and PostgreSQL,
        # and a month of one server's requests is small.
        query = select(UsageEvent).where(UsageEvent.at >= since).order_by(UsageEvent.at)
        if user_id is not None:
            query = query.where(UsageEvent.user_id == user_id)
        with self._db.session() as session:
            rows = session.scalars(query).all()
            totals: dict[tuple[str, str, str], list[int]] = {}
            for event in rows:
                key = (event.user_id, event.model, event.at.date().isoformat())
                counts = totals.setdefault(key, [0, 0, 0])
                counts[0] += 1
                counts[1] += event.prompt_tokens
                counts[2] += event.completion_tokens
            return [UsageRow(u, m, d, *counts) for (u, m, d), counts in totals.items()]
