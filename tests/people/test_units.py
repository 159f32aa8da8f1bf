"""Passwords, keys, the login limiter, quotas and the accounts store, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from iaforall.core.errors import Conflict, InvalidRequest, NotFound, QuotaExceeded
from iaforall.core.types import LOCAL_USER, Usage
from iaforall.people.accounts import Accounts
from iaforall.people.limiter import LoginLimiter, address_key
from iaforall.people.quotas import Quota, QuotaOverride, check, effective, seconds_to_midnight
from iaforall.people.secrets import (
    hash_password,
    new_api_key,
    split_api_key,
    verify_password,
)
from iaforall.store.conversations import Conversations
from iaforall.store.database import Database


@pytest.fixture
def database(any_database: Database) -> Database:
    """SQLite and a real PostgreSQL (tests/store/postgres.py)."""
    return any_database


@pytest.fixture
def accounts(database: Database) -> Accounts:
    return Accounts(database, session_hours=1)


def test_passwords_are_argon2_and_verified() -> None:
    stored = hash_password("s3cret-pass")
    assert stored.startswith("$argon2id$") and "s3cret" not in stored
    assert verify_password(stored, "s3cret-pass")
    assert not verify_password(stored, "s3cret-pasS")
    assert not verify_password(None, "anything")  # unknown user: same work, no match
    assert not verify_password("garbage", "x")


def test_api_keys_have_a_recognisable_shape() -> None:
    key_id, key, secret_digest = new_api_key()
    assert split_api_key(key) == (key_id, key.split("_", 2)[2])
    assert len(secret_digest) == 64 and key.split("_", 2)[2] not in secret_digest
    for bad in ("", "iaf_", f"iaf_{key_id}_short", key + "x", key.replace("iaf", "sk")):
        assert split_api_key(bad) is None


def test_the_login_limiter_counts_a_sliding_window() -> None:
    now = [1000.0]
    limiter = LoginLimiter(attempts=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("Ada", "1.2.3.4") == 0
        limiter.failed("ada", "1.2.3.4")
    assert limiter.retry_after("ADA", "1.2.3.4") == 60
    assert limiter.retry_after("ada", "5.6.7.8") == 0  # another address
    now[0] += 30
    assert limiter.retry_after("ada", "1.2.3.4") == 30
    now[0] += 31
    assert limiter.retry_after("ada", "1.2.3.4") == 0  # the window moved on
    limiter.failed("ada", "1.2.3.4")
    limiter.succeeded("ada", "1.2.3.4")
    assert limiter.retry_after("ada", "1.2.3.4") == 0


def test_the_address_window_counts_every_name_and_survives_a_success() -> None:
    now = [1000.0]
    limiter = LoginLimiter(attempts=5, window=60, address_attempts=3, clock=lambda: now[0])
    for name in ("anna", "boris", None):  # None: a setup attempt, which names nobody
        assert limiter.retry_after(name, "1.2.3.4") == 0
        limiter.failed(name, "1.2.3.4")
    assert limiter.retry_after("carla", "1.2.3.4") == 60
    assert limiter.retry_after(None, "1.2.3.4") == 60
    assert limiter.retry_after("carla", "1.2.3.5") == 0
    limiter.succeeded("anna", "1.2.3.4")  # one good account does not wipe the guesses
    assert limiter.retry_after("carla", "1.2.3.4") == 60
    now[0] += 61
    assert limiter.retry_after("carla", "1.2.3.4") == 0


def test_ipv6_addresses_count_by_slash_64() -> None:
    limiter = LoginLimiter(attempts=5, window=60, address_attempts=2)
    limiter.failed("a", "2001:db8:1:2::1")
    limiter.failed("b", "2001:db8:1:2:ffff::9")
    assert limiter.retry_after("c", "2001:db8:1:2:abcd::1") > 0
    assert limiter.retry_after("c", "2001:db8:1:3::1") == 0
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_key("not an address") == "not an address"


def test_limiter_entries_expire_after_the_window() -> None:
    now = [1000.0]
    limiter = LoginLimiter(attempts=5, window=60, address_attempts=50, clock=lambda: now[0])
    for i in range(1000):
        limiter.failed(f"name{i}", f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 2000  # an account entry and an address entry each
    now[0] += 30
    limiter.failed("late", "10.9.9.9")
    now[0] += 31  # the first thousand are past the window, "late" is not
    assert len(limiter) == 2
    assert limiter.retry_after("late", "10.9.9.9") == 0
    now[0] += 30
    assert len(limiter) == 0


def test_a_flood_of_names_and_addresses_stays_bounded() -> None:
    now = [0.0]
    limiter = LoginLimiter(
        attempts=5, window=3600, address_attempts=1, clock=lambda: now[0], max_entries=500
    )
    for i in range(20_000):  # all within the window: only the cap holds them back
        now[0] += 0.01
        limiter.failed(f"name{i}", f"2001:db8:{i:x}::1")
        assert len(limiter) <= 500
    # The newest are kept (that address is held back); the oldest were forgotten.
    assert limiter.retry_after("x", f"2001:db8:{19_999:x}::1") > 0
    assert limiter.retry_after("x", "2001:db8:0::1") == 0


@pytest.mark.parametrize(
    ("quota", "used", "running", "context", "names"),
    [
        (Quota(), 10**9, 99, 10**6, None),
        (Quota(tokens_per_day=100), 99, 0, 10, None),
        (Quota(tokens_per_day=100), 100, 0, 10, "tokens per day"),
        (Quota(concurrent_requests=2), 0, 2, 10, "concurrent requests"),
        (Quota(max_context=512), 0, 0, 513, "max context"),
        # The first quota that would be passed is the one named.
        (Quota(100, 1, 10), 500, 5, 50, "max context"),
    ],
)
def test_quota_checks(  # type: ignore[no-untyped-def]
    quota, used, running, context, names
) -> None:
    now = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
    if names is None:
        check(quota, used_today=used, running=running, asked_context=context, now=now)
        return
    with pytest.raises(QuotaExceeded) as caught:
        check(quota, used_today=used, running=running, asked_context=context, now=now)
    assert f"'{names}'" in caught.value.message and caught.value.status == 429
    assert caught.value.retry_after > 0


def test_own_quotas_override_the_roles_field_by_field() -> None:
    role = Quota(1000, 2, 4096)
    assert effective(role, None) == role
    assert effective(role, QuotaOverride(tokens_per_day=0)) == Quota(0, 2, 4096)
    assert effective(role, QuotaOverride(None, 5, None)) == Quota(1000, 5, 4096)
    late = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
    assert seconds_to_midnight(late) == 1800


def test_users_are_unique_and_checked(accounts: Accounts) -> None:
    accounts.create_user("Ada", "long enough", "admin")
    with pytest.raises(Conflict):
        accounts.create_user("ada", "long enough")
    with pytest.raises(InvalidRequest):
        accounts.create_user("bad name!", "long enough")
    with pytest.raises(InvalidRequest):
        accounts.create_user("bob", "short")
    with pytest.raises(InvalidRequest):
        accounts.create_user("bob", "long enough", "king")
    assert accounts.check_password("ADA", "long enough") is not None
    assert accounts.check_password("ada", "wrong one!") is None
    with pytest.raises(NotFound):
        accounts.get_user("nobody")


def test_sessions_expire_rotate_and_end_with_a_new_password(
    accounts: Accounts, database: Database
) -> None:
    user = accounts.create_user("ada", "long enough")
    token, csrf = accounts.open_session(user.id)
    principal, seen_csrf = accounts.session_principal(token) or (None, "")
    assert principal is not None and principal.name == "ada" and seen_csrf == csrf
    rotated, _ = accounts.open_session(user.id, replacing=token)
    assert accounts.session_principal(token) is None
    assert accounts.session_principal(rotated) is not None
    accounts.update_user("ada", password="another long one")
    assert accounts.session_principal(rotated) is None
    short = Accounts(accounts._db, session_hours=-1 / 3600)
    expired, _ = short.open_session(user.id)
    assert accounts.session_principal(expired) is None


def test_usage_is_recorded_per_user_model_and_day(accounts: Accounts) -> None:
    ada = accounts.create_user("ada", "long enough")
    accounts.record_usage(ada.id, "tiny", Usage(10, 5))
    accounts.record_usage(ada.id, "tiny", Usage(1, 1))
    accounts.record_usage(ada.id, "other", Usage(2, 2))
    assert accounts.tokens_today(ada.id) == 21
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert accounts.tokens_today(ada.id, tomorrow) == 0
    rows = {(r.model, r.requests, r.prompt_tokens, r.completion_tokens) for r in accounts.usage()}
    assert rows == {("tiny", 2, 11, 6), ("other", 1, 2, 2)}
    assert accounts.usage(user_id="someone else") == []


def test_the_first_admin_gets_the_local_conversations(accounts: Accounts) -> None:
    conversations = Conversations(accounts._db)
    conversations.create(LOCAL_USER, title="before accounts")
    ada = accounts.create_user("ada", "long enough", "admin")
    assert accounts.adopt_local_data(ada.id) == 1
    assert [c.title for c in conversations.list(ada.id)] == ["before accounts"]


def test_keys_are_compared_in_constant_time(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hmac

    from iaforall.people import secrets as secrets_module

    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(secrets_module.hmac, "compare_digest", spy)
    accounts.create_user("ada", "long enough")
    _, key = accounts.create_key("ada", "k")
    assert accounts.key_principal(key) is not None
    key_id = key.split("_")[1]
    assert accounts.key_principal(f"iaf_{key_id}_{'A' * 43}") is None
    assert accounts.key_principal(f"iaf_{'0' * 12}_{'A' * 43}") is None  # unknown id: same work
    assert len(compared) == 3 and all(len(a) == len(b) == 64 for a, b in compared)
