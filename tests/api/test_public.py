"""What answers without credentials says nothing about the machine: a bare liveness answer;
the details, the metrics and the API docs need an administrator (or the metrics token), and
without accounts the loopback host name (no DNS rebinding). The docs load nothing from a CDN."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from iaforall.cli.ps import ps
from iaforall.core.errors import EngineUnavailable
from iaforall.core.types import ModelId
from iaforall.engines.llamacpp.engine import LlamaCppEngine
from iaforall.engines.protocol import Capabilities
from iaforall.settings import PeopleSettings, ServerSettings, Settings
from tests.conftest import FakeWorld
from tests.people.conftest import PASSWORD, Shared, settings_with_accounts, shared_server

REBOUND = {"Host": "attacker.example:8080"}  # a DNS-rebinding page reaches loopback by name
PRIVATE = ("/metrics", "/docs", "/redoc", "/openapi.json")


async def test_local_mode_details_only_on_the_loopback_host(fake: FakeWorld) -> None:
    mine = (await fake.client.get("/health")).json()
    assert mine["status"] == "ok" and "models" in mine and "memory_budget" in mine
    rebound = await fake.client.get("/health", headers=REBOUND)
    assert rebound.status_code == 200
    assert rebound.json() == {"status": "ok"}
    for path in PRIVATE:
        assert (await fake.client.get(path, headers=REBOUND)).status_code == 403, path
        assert (await fake.client.get(path)).status_code == 200, path


async def test_the_docs_are_served_offline(fake: FakeWorld) -> None:
    for page in ("/docs", "/redoc"):
        html = (await fake.client.get(page)).text
        assert "cdn." not in html and "https://" not in html.split("</head>")[0], page
        assert "/docs/assets/" in html
    script = await fake.client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    schema = (await fake.client.get("/openapi.json")).json()
    assert "/v1/chat/completions" in schema["paths"]


@pytest.fixture
async def accounts(tmp_path: Path) -> AsyncIterator[Shared]:
    settings = settings_with_accounts(tmp_path)
    settings = settings.model_copy(
        update={"server": ServerSettings(model="tiny:latest", preload=False, metrics_token="m3t")}
    )
    async with shared_server(tmp_path, settings) as world:
        yield world


async def keys(world: Shared) -> tuple[dict[str, str], dict[str, str]]:
    out = []
    for name in ("ada", "bob"):
        client, csrf = await world.login(name, PASSWORD)
        made = await client.post("/web/api/keys", json={}, headers={"X-CSRF-Token": csrf})
        await client.aclose()
        assert made.status_code == 201, made.text
        out.append({"Authorization": f"Bearer {made.json()['key']}"})
    return out[0], out[1]


async def test_with_accounts_only_an_admin_sees_details(accounts: Shared) -> None:
    admin, member = await keys(accounts)
    client = accounts.client
    health = await client.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    # a member sees what the web app shows while it waits, nothing of the machine
    chat = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
    assert (await client.post("/v1/chat/completions", json=chat, headers=member)).is_success
    seen = (await client.get("/health", headers=member)).json()
    assert seen == {
        "status": "ok",
        "default_model": "tiny:latest",
        "models": [{"name": "tiny:latest", "state": "ready", "queued": 0}],
    }
    assert "models" in (await client.get("/health", headers=admin)).json()
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=member)).status_code == 403
    assert (await client.get("/metrics", headers=admin)).status_code == 200
    monitor = {"Authorization": "Bearer m3t"}
    scraped = await client.get("/metrics", headers=monitor)
    assert scraped.status_code == 200 and "iaforall" in scraped.text
    assert "memory_budget" in (await client.get("/health", headers=monitor)).json()
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer m3x"})
    assert wrong.status_code == 401
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert (await client.get(path)).status_code == 401, path
        assert (await client.get(path, headers=member)).status_code == 200, path


async def test_show_names_the_file_not_where_it_lies(fake: FakeWorld, tmp_path: Path) -> None:
    shown = await fake.client.post("/api/show", json={"model": "tiny"})
    assert shown.status_code == 200
    assert str(tmp_path) not in shown.text
    assert shown.json()["modelfile"].rstrip().endswith("FROM tiny@latest.gguf")


async def test_a_failed_load_keeps_its_log_in_the_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file that is no model: llama.cpp's complaint (naming paths) goes to the server's log,
    the person asking learns that it failed and where an operator looks."""
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    engine = LlamaCppEngine(
        ModelId("broken:latest"),
        broken,
        Capabilities(slots=1, context_length=512, tools=False),
        threads=1,
        log_file=tmp_path / "broken.log",
        load_timeout=60,
        read_timeout=5,
        template_default_system=False,
    )
    with caplog.at_level(logging.ERROR), pytest.raises(EngineUnavailable) as failed:
        await engine.start()
    assert "failed to load" in failed.value.message
    assert str(tmp_path) not in failed.value.message
    assert "\n" not in failed.value.message
    assert any("last log lines" in r.getMessage() for r in caplog.records)


async def test_the_cli_ps_asks_with_its_key(
    accounts: Shared, capsys: pytest.CaptureFixture[str]
) -> None:
    """`iaforall ps` reads /health with IAFORALL_API_KEY: without an admin's, it says so."""
    admin, member = await keys(accounts)
    port = int(accounts.url.rsplit(":", 1)[1])

    def ps_with(key: str | None) -> int:
        settings = Settings(
            server=ServerSettings(port=port), people=PeopleSettings(auth=True, api_key=key)
        )
        return ps(settings)

    assert await asyncio.to_thread(ps_with, member["Authorization"][7:]) == 1
    assert "administrators only" in capsys.readouterr().err
    assert await asyncio.to_thread(ps_with, admin["Authorization"][7:]) == 0
    assert "No model is loaded" in capsys.readouterr().out
