"""A server with accounts on, on the fake engine, and a way to sign people in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from iaforall.app import create_app
from iaforall.settings import PeopleSettings, Settings
from tests.conftest import FakeWorld, fake_settings, served, stock_store

PASSWORD = "correct horse battery"


@dataclass
class Shared(FakeWorld):
    url: str = ""
    home: Path = Path()

    def client_for(self, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, headers=headers)

    async def login(self, name: str, password: str = PASSWORD) -> tuple[httpx.AsyncClient, str]:
        """A browser-like client signed in as `name`, and its CSRF token."""
        client = self.client_for(Origin=self.url)
        response = await client.post("/web/api/session", json={"name": name, "password": password})
        assert response.status_code == 200, response.text
        return client, str(response.json()["csrf_token"])


def settings_with_accounts(home: Path, **people: Any) -> Settings:
    settings = fake_settings(home, max_queue=4, queue_timeout=5)
    return settings.model_copy(update={"people": PeopleSettings(auth=True, **people)})


@asynccontextmanager
async def shared_server(home: Path, settings: Settings) -> AsyncIterator[Shared]:
    """The app with `settings` over real HTTP; an admin `ada` and a member `bob`, made in
    its database (with accounts on, nobody could make them through the API first)."""
    stock_store(home)
    world = Shared(client=httpx.AsyncClient(), home=home)
    app = create_app(settings, factory=world.factory)
    async with served(app) as url:
        world.url = url
        accounts = app.state.services.accounts
        accounts.create_user("ada", PASSWORD, "admin")
        accounts.create_user("bob", PASSWORD, "member")
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            world.client = client
            yield world


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[Shared]:
    """Accounts on, default quotas, no rules."""
    async with shared_server(tmp_path, settings_with_accounts(tmp_path)) as world:
        yield world
