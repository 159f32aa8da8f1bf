"""An administrator downloads a backup from /admin/api/backup, streamed while the server
serves; it restores like one made by the command. Members and strangers cannot."""

from __future__ import annotations

import asyncio
import contextlib
import tarfile
import tracemalloc
from pathlib import Path

import httpx

from iaforall.app import create_app
from iaforall.backup.restore import restore
from tests.backup.homes import contents, fill, settings_for
from tests.conftest import fake_settings, served
from tests.people.conftest import settings_with_accounts, shared_server


async def test_an_admin_downloads_a_backup_that_restores(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = settings_with_accounts(home)
    async with shared_server(home, settings) as world:
        fill(settings, owner="carol", document_bytes=8_000_000)  # more than the queue holds
        ada, _ = await world.login("ada")
        bob, _ = await world.login("bob")
        async with contextlib.AsyncExitStack() as clients:
            clients.push_async_callback(ada.aclose)
            clients.push_async_callback(bob.aclose)
            assert (await ada.get("/admin/api/backup/last")).json() == {"last": None}
            assert (await bob.get("/admin/api/backup")).status_code == 403
            assert (await world.client.get("/admin/api/backup")).status_code == 401

            archive = tmp_path / "download.tar"
            async with ada.stream("GET", "/admin/api/backup") as response:
                assert response.status_code == 200
                assert response.headers["content-type"] == "application/x-tar"
                assert "content-length" not in response.headers  # sent as it is written
                disposition = response.headers["content-disposition"]
                assert 'filename="iaforall-backup-' in disposition
                with archive.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
            last = (await ada.get("/admin/api/backup/last")).json()["last"]
            assert last["how"] == "download" and last["files"] >= 3

            # a download cut short leaves no copy of the database behind
            async with ada.stream("GET", "/admin/api/backup") as response:
                async for _ in response.aiter_bytes():
                    break
            for _ in range(100):  # the writer stops within half a second of the client leaving
                if not list(home.glob(".backup-*")):
                    break
                await asyncio.sleep(0.05)
            assert not list(home.glob(".backup-*"))
            assert (await ada.get("/admin/api/backup/last")).json()["last"] == last
    with tarfile.open(archive) as tar:
        assert tar.getnames()[-1] == "manifest.json"
    new = settings_for(tmp_path / "new")
    restore(new, archive)
    assert contents(new) == contents(settings_for(home))


async def test_a_download_that_cannot_start_says_why(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = settings_with_accounts(home)
    async with shared_server(home, settings) as world:
        ada, _ = await world.login("ada")
        async with contextlib.aclosing(ada):
            (home / "iaforall.db").rename(home / "moved.db")
            response = await ada.get("/admin/api/backup")
    assert response.status_code == 400
    assert "There is no database" in response.json()["error"]["message"]
    assert isinstance(response, httpx.Response)


async def test_a_download_is_streamed_not_held_in_memory(tmp_path: Path) -> None:
    """A 40 MB knowledge file goes out while Python never holds more than a few MB more."""
    home = tmp_path / "home"
    settings = fake_settings(home)
    fill(settings_for(home), conversations=1, document_bytes=40_000_000)
    async with served(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        tracemalloc.start()
        try:
            received = 0
            async with client.stream("GET", "/admin/api/backup", timeout=60) as response:
                async for chunk in response.aiter_raw():
                    received += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert received > 40_000_000
    assert peak < 12_000_000, f"{peak / 1e6:.1f} MB held at once"
