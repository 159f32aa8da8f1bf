"""The real app on loopback with two tiny image models pulled from local folders (a quick one,
and a slow one whose steps take long enough to cancel or kill a drawing mid-way), one app for
the module: each model's worker starts once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from fastapi import FastAPI

from iaforall.app import create_app
from iaforall.engines.images.runtime import ImageRuntime
from iaforall.models.image_pull import add_folder
from iaforall.settings import DrawingSettings, PolicySettings, Settings
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.images.tiny import make_tiny_pipeline

QUICK = "tiny-draw"
SLOW = "slow-draw"
RULES = """
[[rule]]
id = "no-dragons"
action = "block"
description = "Dragons are not drawn here."
match.keywords = ["dragon"]

[[rule]]
id = "cats-noted"
action = "warn"
description = "Cats are noted."
match.keywords = ["cat"]
"""


@dataclass
class DrawWorld:
    url: str
    app: FastAPI
    client: httpx.AsyncClient
    sdk: openai.AsyncOpenAI
    settings: Settings

    def runtime(self, name: str) -> ImageRuntime:
        found = self.app.state.services.pool.runtimes.get(name)
        assert isinstance(found, ImageRuntime)
        return found


@pytest.fixture(scope="module")
def drawing_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("drawing-home")
    stock_store(home)  # a chat model beside: "tiny"
    sources = tmp_path_factory.mktemp("pipelines")
    add_folder(home, make_tiny_pipeline(sources / "tiny"), QUICK)
    # ~1.7 GFLOP a step at 512x512: long enough to act on a drawing between its steps
    add_folder(home, make_tiny_pipeline(sources / "slow", hidden=64, layers=6), SLOW)
    (home / "rules.toml").write_text(RULES)
    return home


def drawing_settings(home: Path) -> Settings:
    settings = fake_settings(home, max_queue=4, queue_timeout=30, cpu_cores=2)
    return settings.model_copy(
        update={
            "drawing": DrawingSettings(draw_max_steps=50, draw_max_n=3, draw_timeout=60),
            "policy": PolicySettings(rules_file=home / "rules.toml"),
        }
    )


@pytest.fixture(scope="module")
async def drawing(drawing_home: Path) -> AsyncIterator[DrawWorld]:
    settings = drawing_settings(drawing_home)
    fake = FakeWorld(client=httpx.AsyncClient())
    app = create_app(settings, factory=fake.factory)
    async with (
        served(app) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as sdk,
    ):
        yield DrawWorld(url, app, client, sdk, settings)
