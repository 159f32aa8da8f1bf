"""`iaforall users …`, `iaforall keys …`, and the refusal to share without accounts."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from iaforall.cli.main import main
from iaforall.cli.serve import exposure_problem
from iaforall.people.accounts import Accounts
from iaforall.settings import PeopleSettings, ServerSettings, Settings
from iaforall.store.database import Database


def test_users_and_keys_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IAFORALL_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long password\n"))
    assert main(["users", "create-admin", "ada", "--password-stdin"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["users", "create", "bob", "--password-stdin"]) == 1
    assert "too short" in capsys.readouterr().out
    assert main(["keys", "create", "--user", "ada", "--name", "editor"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    accounts = Accounts(Database(f"sqlite:///{tmp_path / 'iaforall.db'}"), 1)
    principal = accounts.key_principal(key)
    assert principal is not None and principal.name == "ada" and principal.is_admin
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "editor" in listing and key not in listing
    assert main(["keys", "revoke", key.split("_")[1]]) == 0
    assert accounts.key_principal(key) is None
    assert main(["users", "disable", "ada"]) == 0
    assert main(["users", "list"]) == 0
    assert "disabled" in capsys.readouterr().out
    assert main(["users", "delete", "nobody"]) == 1


def test_sharing_needs_accounts() -> None:
    def settings(host: str, auth: bool) -> Settings:
        return Settings(server=ServerSettings(host=host), people=PeopleSettings(auth=auth))

    assert exposure_problem(settings("127.0.0.1", False)) is None
    assert exposure_problem(settings("localhost", False)) is None
    assert exposure_problem(settings("0.0.0.0", True)) is None
    problem = exposure_problem(settings("0.0.0.0", False))
    assert problem is not None and "IAFORALL_AUTH=true" in problem
    assert main(["serve", "--host", "192.168.1.10"]) == 2


def test_a_wrong_rules_file_stops_the_server_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nid = "x"\ndescription = "d"\nmatch.keywords = ["a"]\naction = "explode"\n'
    )
    monkeypatch.setenv("IAFORALL_HOME", str(tmp_path))
    monkeypatch.setenv("IAFORALL_RULES_FILE", str(rules))
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "rule 'x'" in err and "action" in err and "Traceback" not in err


async def test_run_talks_to_a_server_with_accounts_with_its_key(shared) -> None:  # type: ignore[no-untyped-def]
    from iaforall.cli.run import HttpBackend
    from iaforall.core.errors import IAForAllError

    bob, csrf = await shared.login("bob")
    key = (await bob.post("/web/api/keys", json={}, headers={"X-CSRF-Token": csrf})).json()["key"]
    message = [{"role": "user", "content": "hello"}]
    anonymous = HttpBackend(shared.url, "tiny", {})
    with pytest.raises(IAForAllError) as caught:
        [piece async for piece in anonymous.answer(message)]  # type: ignore[arg-type]
    assert "IAFORALL_API_KEY" in caught.value.message
    await anonymous.close()
    keyed = HttpBackend(shared.url, "tiny", {}, {"Authorization": f"Bearer {key}"})
    assert "".join([p async for p in keyed.answer(message)]) == "hello"  # type: ignore[arg-type]
    await keyed.close()
