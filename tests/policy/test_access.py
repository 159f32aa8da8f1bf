"""With accounts on: the rules are public, the audit log is for administrators only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from iaforall.app import create_app
from iaforall.settings import PolicySettings
from tests.conftest import served, stock_store
from tests.people.conftest import PASSWORD, Shared, settings_with_accounts
from tests.policy.samples import BILINGUAL


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[Shared]:
    stock_store(tmp_path)
    rules = tmp_path / "rules.toml"
    rules.write_text(BILINGUAL, encoding="utf-8")
    settings = settings_with_accounts(tmp_path).model_copy(
        update={"policy": PolicySettings(rules_file=rules)}
    )
    world = Shared(client=httpx.AsyncClient(), home=tmp_path)
    app = create_app(settings, factory=world.factory)
    async with served(app) as url:
        world.url = url
        app.state.services.accounts.create_user("ada", PASSWORD, "admin")
        app.state.services.accounts.create_user("bob", PASSWORD, "member")
        async with world.client_for() as client:
            world.client = client
            yield world


async def test_the_rules_are_public(shared: Shared) -> None:
    policy = await shared.client.get("/v1/policy")
    assert policy.status_code == 200 and len(policy.json()["rules"]) == 3
    assert (await shared.client.get("/rules")).status_code == 200


@pytest.mark.parametrize("path", ["/admin/api/audit", "/admin/api/audit/export?format=json"])
async def test_the_audit_log_is_for_administrators(shared: Shared, path: str) -> None:
    anonymous = await shared.client.get(path)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "invalid_api_key"
    bob, _ = await shared.login("bob")
    ada, _ = await shared.login("ada")
    try:
        refused = await bob.get(path)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        assert (await ada.get(path)).status_code == 200
    finally:
        await bob.aclose()
        await ada.aclose()
