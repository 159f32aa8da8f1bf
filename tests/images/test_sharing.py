"""On a shared server: a picture's link is its owner's only, and pictures count against the
person's tokens per day in their declared units (a 429 once the quota is used)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from iaforall.app import create_app
from iaforall.models.image_pull import add_folder
from iaforall.settings import DrawingSettings, PeopleSettings
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.images.tiny import make_tiny_pipeline

pytestmark = pytest.mark.timeout(60)
ASK = {"model": "tiny-draw", "prompt": "a small boat", "size": "512x512"}


@pytest.fixture(scope="module")
async def people(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Ada (admin) and Bob (a member: one picture uses his 400 tokens a day), with API keys."""
    home = tmp_path_factory.mktemp("shared-drawing")
    stock_store(home)
    add_folder(home, make_tiny_pipeline(home / "src" / "tiny"), "tiny-draw")
    settings = fake_settings(home, max_queue=4, queue_timeout=10).model_copy(
        update={
            "people": PeopleSettings(auth=True, member_tokens_per_day=400),
            "drawing": DrawingSettings(draw_units=500),
        }
    )
    app = create_app(settings, factory=FakeWorld(client=httpx.AsyncClient()).factory)
    async with served(app) as url:
        accounts = app.state.services.accounts
        accounts.create_user("ada", "correct horse battery", "admin")
        accounts.create_user("bob", "correct horse battery", "member")
        keys = [accounts.create_key(name, "test")[1] for name in ("ada", "bob")]
        async with (
            httpx.AsyncClient(base_url=url, timeout=60, headers=_bearer(keys[0])) as ada,
            httpx.AsyncClient(base_url=url, timeout=60, headers=_bearer(keys[1])) as bobs,
        ):
            yield ada, bobs


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_link_is_its_owners_only(
    people: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    ada, bob = people
    drawn = await ada.post(
        "/v1/images/generations", json={**ASK, "size": "256x256", "response_format": "url"}
    )
    assert drawn.status_code == 200, drawn.text
    url = drawn.json()["data"][0]["url"]
    assert (await ada.get(url)).status_code == 200
    assert (await bob.get(url)).status_code == 404  # as if it did not exist
    assert (await httpx.AsyncClient().get(url)).status_code == 401


async def test_pictures_count_against_the_tokens_per_day(
    people: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    _, bob = people
    first = await bob.post("/v1/images/generations", json=ASK)
    assert first.status_code == 200, first.text
    assert first.json()["usage"]["output_tokens"] == 500
    second = await bob.post("/v1/images/generations", json=ASK)
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "quota_exceeded"
