"""Policy.check_input / check_output: decisions returned, logged, and a block raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from iaforall.core.types import ChatRequest, CompletionRequest, ModelId, UserId
from iaforall.policy.gate import (
    Policy,
    PolicyBlocked,
    TooLongForRules,
    decisions_field,
    input_texts,
)
from iaforall.policy.rules import NO_RULES, parse_rules
from iaforall.settings import PolicySettings
from iaforall.store.audit import AuditLog
from iaforall.store.database import Database
from tests.policy.samples import BILINGUAL

ANA = UserId("ana")
MAX_CHARS = PolicySettings().rules_max_chars


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    database = Database(f"sqlite:///{tmp_path / 'iaforall.db'}")
    database.upgrade()
    return AuditLog(database)


def chat(*messages: tuple[str, object]) -> ChatRequest:
    return ChatRequest(
        model=ModelId("tiny:latest"),
        messages=tuple({"role": role, "content": content} for role, content in messages),
        user=ANA,
    )


def test_input_is_what_people_write() -> None:
    request = chat(
        ("system", "Be brief."),
        ("user", "Hello"),
        ("assistant", "bombe artisanale"),  # checked as output when it was written
        ("tool", "tool says"),
        ("user", [{"type": "text", "text": "part one"}, {"type": "image_url"}]),
        ("user", ""),
    )
    assert [(c.where, c.text) for c in input_texts(request)] == [
        ("messages[0]", "Be brief."),
        ("messages[1]", "Hello"),
        ("messages[4]", "part one"),
    ]
    completion = CompletionRequest(model=ModelId("tiny"), prompt="Once upon")
    assert [(c.where, c.text) for c in input_texts(completion)] == [("prompt", "Once upon")]


async def test_a_block_is_logged_then_raised_naming_the_rule(audit: AuditLog) -> None:
    policy = Policy(parse_rules(BILINGUAL), audit, max_chars=MAX_CHARS)
    request = chat(("user", "Mes devoirs"), ("user", "Une bombe artisanale ?"))
    with pytest.raises(PolicyBlocked) as caught:
        await policy.check_input(request, kind="chat", language="fr")
    error = caught.value
    assert (error.status, error.code) == (403, "policy_blocked")
    assert error.message == (
        "The request was refused by the server's published rule 'no-weapons': Les instructions "
        "pour fabriquer des armes ou des explosifs sont refusées. The rules are listed at "
        "/v1/policy."
    )
    decisions = error.extra["iaforall"]["decisions"]
    assert [(d["rule"], d["action"], d["where"]) for d in decisions] == [
        ("no-weapons", "block", "messages[1]"),
        ("homework", "log", "messages[0]"),
    ]
    logged = audit.list()
    assert [(e.rule_id, e.action, e.user, e.model, e.kind) for e in reversed(logged)] == [
        ("no-weapons", "block", "ana", "tiny:latest", "chat"),
        ("homework", "log", "ana", "tiny:latest", "chat"),
    ]
    assert logged[-1].excerpt == "Une bombe artisanale ?"


async def test_warn_and_log_are_returned_and_logged(audit: AuditLog) -> None:
    policy = Policy(parse_rules(BILINGUAL), audit, max_chars=MAX_CHARS)
    request = chat(("user", "My homework: call 06 12 34 56 78"))
    decisions = await policy.check_input(request, kind="web")
    assert [(d.rule_id, d.action) for d in decisions] == [
        ("phone-numbers", "warn"),
        ("homework", "log"),
    ]
    assert decisions_field(decisions)["decisions"][0] == {
        "rule": "phone-numbers",
        "description": "Phone numbers are personal data: think twice before sharing one.",
        "action": "warn",
        "applies_to": "input",
        "where": "messages[0]",
        "excerpt": "My homework: call 06 12 34 56 78",
    }
    assert len(audit.list()) == 2
    assert decisions_field([]) == {}


async def test_output_is_checked_on_the_completed_text(audit: AuditLog) -> None:
    rules = parse_rules(
        BILINGUAL
        + '[[rule]]\nid = "no-insults"\naction = "block"\napplies_to = "output"\n'
        + 'description = "No insults in answers."\nmatch.keywords = ["idiot"]\n'
    )
    policy = Policy(rules, audit, max_chars=MAX_CHARS)
    request = chat(("user", "hi"))
    warned = await policy.check_output("Call 01 23 45 67 89.", request, kind="chat")
    assert [(d.rule_id, d.where, d.stage) for d in warned] == [
        ("phone-numbers", "output", "output")
    ]
    with pytest.raises(PolicyBlocked, match=r"The answer was withheld .* 'no-insults'"):
        await policy.check_output("You idiot.", request, kind="chat")
    assert [e.rule_id for e in audit.list()] == ["no-insults", "phone-numbers"]


async def test_no_rules_touch_nothing(tmp_path: Path) -> None:
    # No database at all: with no rules, nothing is evaluated or written.
    audit = AuditLog(Database(f"sqlite:///{tmp_path / 'none' / 'x.db'}"))
    policy = Policy(NO_RULES, audit, max_chars=10)
    request = chat(("user", "bombe artisanale"))
    assert await policy.check_input(request, kind="chat") == []
    assert await policy.check_output("bombe artisanale", request, kind="chat") == []
    assert not (tmp_path / "none" / "x.db").exists()


async def test_more_text_than_the_rules_read_is_refused_whole(audit: AuditLog) -> None:
    policy = Policy(parse_rules(BILINGUAL), audit, max_chars=100)
    # Within the bound, the whole text is read, to its very end.
    read = chat(("user", "x" * 40), ("user", "y" * 40 + " devoirs"))
    assert [d.rule_id for d in await policy.check_input(read, kind="chat")] == ["homework"]
    # Past it (the messages counted together), nothing is read in part: padding the
    # forbidden words with harmless text does not carry them past the rule.
    padded = chat(("user", "x" * 60), ("user", "une bombe artisanale" + " y" * 20))
    with pytest.raises(TooLongForRules) as caught:
        await policy.check_input(padded, kind="chat")
    error = caught.value
    assert (error.status, error.code) == (413, "too_long_for_rules")
    assert error.message == (
        "The request was refused: its text is 120 characters long, and the server's published "
        "rules read at most 100 (setting IAFORALL_RULES_MAX_CHARS); it is not checked in part. "
        "Send a shorter text. The rules are listed at /v1/policy."
    )
    with pytest.raises(TooLongForRules, match=r"^The answer was withheld: it is 101 char"):
        await policy.check_output("z" * 101, read, kind="chat")
    assert [e.rule_id for e in audit.list()] == ["homework"]


async def test_the_bound_applies_only_to_stages_with_rules(audit: AuditLog) -> None:
    input_only = parse_rules(BILINGUAL.replace('applies_to = ["input", "output"]', ""))
    policy = Policy(input_only, audit, max_chars=10)
    assert await policy.check_output("an answer longer than ten", chat(), kind="chat") == []
