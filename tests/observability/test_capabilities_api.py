"""The doctor's table where the server shows it: the administrator's /health (with details) and
/web/api/capabilities, which the web app reads to disable what is missing (members get the
table without the details of the machine)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from iaforall.engines import whisper
from tests.conftest import FakeWorld
from tests.people.conftest import Shared, settings_with_accounts, shared_server


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[Shared]:
    """Accounts on: an admin ada and a member bob."""
    async with shared_server(tmp_path, settings_with_accounts(tmp_path)) as world:
        yield world


IDS = ["chat", "speech_to_text_en", "speech_to_text_fr", "text_to_speech_en"]


async def test_the_admins_health_carries_the_table(fake: FakeWorld) -> None:
    health = (await fake.client.get("/health")).json()  # loopback, no accounts: an admin
    rows = {row["id"]: row for row in health["capabilities"]}
    assert list(rows)[: len(IDS)] == IDS
    assert rows["chat"]["status"] == "ok"  # tiny:latest is in the fake's store
    assert rows["chat"]["details"]["path"].endswith(".gguf")
    assert rows["database"]["status"] == "ok"
    assert rows["database"]["details"]["schema"] == "head"  # the app migrated it at start


async def test_members_see_the_table_without_the_machines_details(shared: Shared) -> None:
    member, _ = await shared.login("bob")
    rows = (await member.get("/web/api/capabilities")).json()["data"]
    await member.aclose()
    assert [row["id"] for row in rows][: len(IDS)] == IDS
    assert all("details" not in row and row["why"] for row in rows)
    admin, _ = await shared.login("ada")
    rows = (await admin.get("/web/api/capabilities")).json()["data"]
    await admin.aclose()
    assert all("details" in row for row in rows)
    bare = await shared.client.get("/web/api/capabilities")
    assert bare.status_code == 401  # signed in only


async def test_without_whisper_the_app_learns_why_and_the_fix(
    fake: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(whisper, "installed", lambda home=None: [])
    rows = {r["id"]: r for r in (await fake.client.get("/web/api/capabilities")).json()["data"]}
    hearing = rows["speech_to_text_en"]
    assert hearing["status"] == "missing"
    assert "microphone" in hearing["why"]
    assert hearing["fix"] == "iaforall pull whisper:tiny.en"
    assert rows["speech_to_text_fr"]["status"] == "missing"


async def test_a_missing_whisper_models_error_says_what_installs_it(fake: FakeWorld) -> None:
    """The 404 of a Whisper model that is not here says the `iaforall pull` that brings it."""
    audio = {"file": ("a.wav", b"RIFF", "audio/wav")}
    answer = await fake.client.post(
        "/v1/audio/transcriptions", files=audio, data={"model": "whisper:nope"}
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "model_not_found"
    from iaforall.core.errors import ModelNotFound
    from iaforall.engines.install import install_command

    message = ModelNotFound("whisper-1", install=install_command("whisper-1")).message
    assert "`iaforall pull whisper:tiny.en`" in message
