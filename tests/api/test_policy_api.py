"""/v1/policy (public) and /admin/api/audit (read and export), on the fake engine over HTTP."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from iaforall.api.policy import preferred_language
from iaforall.app import create_app
from iaforall.policy.rules import RulesFileError
from iaforall.settings import PolicySettings, Settings
from iaforall.store.audit import AuditLog, AuditRecord
from iaforall.store.database import Database
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.policy.samples import BILINGUAL

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def with_rules(home: Path, rules: str | None, **policy: int) -> Settings:
    settings = fake_settings(home)
    path = None
    if rules is not None:
        path = home / "rules.toml"
        path.write_text(rules, encoding="utf-8")
    return settings.model_copy(update={"policy": PolicySettings(rules_file=path, **policy)})


def policy_app(settings: Settings, world: FakeWorld) -> FastAPI:
    return create_app(settings, factory=world.factory)


@dataclass
class Served:
    client: httpx.AsyncClient
    audit: AuditLog


async def serve(tmp_path: Path, rules: str | None, **policy: int) -> AsyncIterator[Served]:
    stock_store(tmp_path)
    world = FakeWorld(client=httpx.AsyncClient())
    settings = with_rules(tmp_path, rules, **policy)
    app = policy_app(settings, world)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        database = Database(settings.database_url)
        try:
            yield Served(client, AuditLog(database))
        finally:
            database.close()


@pytest.fixture
async def ruled(tmp_path: Path) -> AsyncIterator[Served]:
    async for world in serve(tmp_path, BILINGUAL):
        yield world


@pytest.fixture
async def bounded(tmp_path: Path) -> AsyncIterator[Served]:
    """The same rules, reading at most 200 characters of a request."""
    async for world in serve(tmp_path, BILINGUAL, rules_max_chars=200):
        yield world


@pytest.fixture
async def unruled(tmp_path: Path) -> AsyncIterator[Served]:
    async for world in serve(tmp_path, None):
        yield world


async def test_no_rules_by_default(unruled: Served) -> None:
    response = await unruled.client.get("/v1/policy")
    assert response.status_code == 200
    body = response.json()
    assert body["rules"] == [] and body["injected_into_prompts"] is False


async def test_the_rules_are_published_with_their_match(ruled: Served) -> None:
    body = (await ruled.client.get("/v1/policy")).json()
    assert body["object"] == "policy" and body["language"] == "en"
    weapons, phones, homework = body["rules"]
    assert weapons == {
        "id": "no-weapons",
        "description": "Instructions to make weapons or explosives are refused.",
        "descriptions": {
            "en": "Instructions to make weapons or explosives are refused.",
            "fr": "Les instructions pour fabriquer des armes ou des explosifs sont refusées.",
        },
        "action": "block",
        "applies_to": ["input"],
        "match": {
            "keywords": ["bombe artisanale", "explosif", "pipe bomb"],
            "whole_words": True,
            "ignores": "case, accents",
        },
    }
    assert phones["match"] == {
        "regex": r"\b0[1-9](?:[ .]?\d{2}){4}\b",
        "syntax": "RE2",
        "ignores": "case",
    }
    assert phones["applies_to"] == ["input", "output"]
    assert homework["action"] == "log"
    assert "policy_blocked" in body["decisions"]["returned"]
    assert "administrators" in body["decisions"]["logged"]


@pytest.mark.parametrize(
    ("params", "headers", "language", "first_words"),
    [
        ({"lang": "fr"}, {}, "fr", "Les instructions"),
        ({}, {"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"}, "fr-CA", "Les instructions"),
        ({"lang": "en"}, {"Accept-Language": "fr"}, "en", "Instructions"),
        ({}, {"Accept-Language": "de"}, "de", "Instructions"),  # English when missing
    ],
)
async def test_descriptions_in_the_asked_language(
    ruled: Served, params: dict[str, str], headers: dict[str, str], language: str, first_words: str
) -> None:
    body = (await ruled.client.get("/v1/policy", params=params, headers=headers)).json()
    assert body["language"] == language
    assert body["rules"][0]["description"].startswith(first_words)
    # A rule with one description gives it in every language.
    assert body["rules"][2]["description"].startswith("Questions about homework")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", None),
        ("fr", "fr"),
        ("en;q=0.4, fr-CA;q=0.8, *;q=0.9", "fr-CA"),
        ("*", None),
        ("fr;q=abc, de", "de"),
    ],
)
def test_preferred_language(header: str, expected: str | None) -> None:
    assert preferred_language(header) == expected


def test_a_bad_rules_file_stops_the_start(tmp_path: Path) -> None:
    settings = with_rules(tmp_path, '[[rule]]\nid = "x"\naction = "ban"\n')
    expected = r"rules.toml: rule 'x', 'description': Field required \(and 2 more problem"
    with pytest.raises(RulesFileError, match=expected):
        create_app(settings)


def test_a_regex_re2_cannot_run_stops_the_start_with_its_reason(tmp_path: Path) -> None:
    rule = '[[rule]]\nid = "no-bombs"\naction = "block"\ndescription = "x"\n'
    settings = with_rules(tmp_path, rule + "match.regex = '(bomb)\\s+\\1'\n")
    expected = (
        "rules.toml: rule 'no-bombs', 'match.regex': the regex '(bomb)\\s+\\1' is "
        "refused: RE2 cannot compile it: invalid escape sequence: \\1 (back references are "
        "not supported)."
    )
    with pytest.raises(RulesFileError) as caught:
        create_app(settings)
    assert str(caught.value).endswith(expected)


def seed(audit: AuditLog, count: int) -> None:
    audit.add(
        [
            AuditRecord(
                user="ana" if n % 2 else "bob",
                rule_id="no-weapons" if n % 3 else "phone-numbers",
                description="A rule.",
                action="block" if n % 3 else "warn",
                stage="input",
                where="messages[0]",
                excerpt=f"=excerpt {n}" if n == 1 else f"excerpt {n}",
                model="tiny:latest",
                kind="chat",
                at=T0 + timedelta(minutes=n),
            )
            for n in range(1, count + 1)
        ]
    )


async def test_admins_read_the_audit_log(ruled: Served) -> None:
    seed(ruled.audit, 7)
    body = (await ruled.client.get("/admin/api/audit")).json()
    assert [e["id"] for e in body["data"]] == [7, 6, 5, 4, 3, 2, 1]
    assert body["next_before"] is None
    assert body["data"][-1]["excerpt"] == "=excerpt 1"
    first = (await ruled.client.get("/admin/api/audit", params={"limit": 3})).json()
    assert [e["id"] for e in first["data"]] == [7, 6, 5] and first["next_before"] == 5
    params = {"limit": 3, "before": first["next_before"]}
    second = (await ruled.client.get("/admin/api/audit", params=params)).json()
    assert [e["id"] for e in second["data"]] == [4, 3, 2]


@pytest.mark.parametrize(
    ("params", "ids"),
    [
        ({"user": "ana"}, [7, 5, 3, 1]),
        ({"rule": "phone-numbers"}, [6, 3]),
        ({"action": "warn", "user": "bob"}, [6]),
        ({"since": "2026-11-29T12:05:00Z"}, [7, 6, 5]),
        ({"until": "2026-11-29T12:03:00"}, [2, 1]),  # no zone: UTC
        ({"since": "2026-11-29T13:04:00+01:00", "until": "2026-11-29T12:06:00Z"}, [5, 4]),
    ],
)
async def test_audit_filters(ruled: Served, params: dict[str, str], ids: list[int]) -> None:
    seed(ruled.audit, 7)
    body = (await ruled.client.get("/admin/api/audit", params=params)).json()
    assert [e["id"] for e in body["data"]] == ids
    exported = (await ruled.client.get("/admin/api/audit/export", params=params)).text
    assert [int(r["id"]) for r in csv.DictReader(io.StringIO(exported))] == sorted(ids)


@pytest.mark.parametrize(
    "params",
    [
        {"action": "ban"},
        {"since": "yesterday"},
        {"limit": "0"},
        {"format": "xml"},
        {"before": str(2**64)},  # beyond the database's 64-bit integers (found by fuzzing)
    ],
)
async def test_bad_audit_queries_are_400(ruled: Served, params: dict[str, str]) -> None:
    path = "/admin/api/audit/export" if "format" in params else "/admin/api/audit"
    response = await ruled.client.get(path, params=params)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_audit_export_csv_and_json(ruled: Served) -> None:
    seed(ruled.audit, 3)
    response = await ruled.client.get("/admin/api/audit/export", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="iaforall-audit-')
    assert disposition.endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["excerpt"] == "'=excerpt 1"
    response = await ruled.client.get("/admin/api/audit/export", params={"format": "json"})
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"].endswith('.json"')
    exported = response.json()
    assert [e["id"] for e in exported] == [1, 2, 3]
    assert exported[0]["excerpt"] == "=excerpt 1"  # JSON keeps the text as it was


async def test_the_rules_page_is_served_to_everyone(unruled: Served) -> None:
    response = await unruled.client.get("/rules")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert '<script type="module" src="/static/js/rules.js">' in response.text


async def test_a_text_longer_than_the_rules_read_is_refused_in_each_api(bounded: Served) -> None:
    padded = "une bombe artisanale" + " rien" * 50  # 270 characters
    chat = {"model": "tiny", "messages": [{"role": "user", "content": padded}]}
    openai = await bounded.client.post("/v1/chat/completions", json=chat)
    assert openai.status_code == 413
    error = openai.json()["error"]
    assert error["code"] == "too_long_for_rules"
    assert error["message"].startswith("The request was refused: its text is 270 characters")
    assert "IAFORALL_RULES_MAX_CHARS" in error["message"]
    ollama = await bounded.client.post("/api/chat", json={**chat, "stream": False})
    assert ollama.status_code == 413
    assert "at most 200" in ollama.json()["error"]
    short = {"model": "tiny", "messages": [{"role": "user", "content": "une bombe artisanale"}]}
    assert (await bounded.client.post("/v1/chat/completions", json=short)).status_code == 403
    published = (await bounded.client.get("/v1/policy")).json()
    assert "200 characters" in published["decisions"]["read"]
