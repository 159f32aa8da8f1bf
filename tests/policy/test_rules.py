"""The rules file: what is accepted, and a clear message naming the rule for what is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from iaforall.policy.rules import NO_RULES, RulesFileError, load_rules, parse_rules
from tests.policy.samples import BILINGUAL


def rule(**fields: str) -> str:
    """One [[rule]] table: a valid rule, with `fields` replacing or adding TOML lines."""
    lines = {
        "id": '"r1"',
        "description": '"A rule."',
        "action": '"block"',
        "match.keywords": '["word"]',
    }
    lines.update(fields)
    return "[[rule]]\n" + "".join(f"{k} = {v}\n" for k, v in lines.items() if v)


def test_the_documented_example_loads() -> None:
    rules = parse_rules(BILINGUAL)
    assert [r.id for r in rules.rules] == ["no-weapons", "phone-numbers", "homework"]
    weapons, phones, homework = rules.rules
    assert weapons.applies_to == ("input",)  # the default
    assert phones.applies_to == ("input", "output")
    assert weapons.describe("fr").startswith("Les instructions")
    assert weapons.describe("fr-CA").startswith("Les instructions")
    assert weapons.describe("de").startswith("Instructions")  # English when missing
    assert homework.description == {"en": homework.describe("fr")}  # one text for all
    assert [r.id for r in rules.for_stage("output")] == ["phone-numbers"]


def test_no_file_means_no_rules(tmp_path: Path) -> None:
    assert load_rules(None) is NO_RULES
    assert not NO_RULES
    empty = tmp_path / "rules.toml"
    empty.write_text("# nothing yet\n")
    assert not load_rules(empty)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (rule(id='"No Weapons"'), "rule 'No Weapons', 'id': 'No Weapons' is not a valid id"),
        (rule(action='"deny"'), "rule 'r1', 'action': Input should be 'block', 'warn' or 'log'"),
        (rule(**{"match.regex": '"x"'}), "rule 'r1', 'match': give exactly one of"),
        (rule(**{"match.keywords": ""}), "rule 'r1', 'match': Field required"),
        (rule(**{"match.keywords": "[]"}), "rule 'r1', 'match': 'keywords' is empty"),
        (rule(**{"match.keywords": '["  "]'}), "rule 'r1', 'match.keywords.0'"),
        (
            rule(**{"match.keywords": "", "match.regex": "'(a)x\\1'"}),
            "rule 'r1', 'match.regex': the regex '(a)x\\1' is refused: RE2 cannot compile it: "
            "invalid escape sequence: \\1 (back references are not supported)",
        ),
        (
            rule(**{"match.keywords": "", "match.regex": "'bomb(?!er)'"}),
            "rule 'r1', 'match.regex': the regex 'bomb(?!er)' is refused: RE2 cannot compile it: "
            "invalid perl operator: (?! (look-ahead is not supported)",
        ),
        (
            rule(**{"match.keywords": "", "match.regex": "'[a-'"}),
            "rule 'r1', 'match.regex': the regex '[a-' is refused: RE2 cannot compile it: "
            "missing ]: [a-",
        ),
        (
            rule(**{"match.keywords": "", "match.regex": "'x?'"}),
            "the regex 'x?' is refused: the pattern matches an empty text",
        ),
        (rule(description=""), "rule 'r1', 'description': Field required"),
        (rule(description="{}"), "rule 'r1', 'description': give a description"),
        (rule(description='{english = "x"}'), "'english' is not a language code"),
        (rule(applies_to='"answers"'), "rule 'r1', 'applies_to.0': Input should be 'input' or"),
        (rule(applies_to="[]"), "rule 'r1', 'applies_to': give 'input', 'output' or both"),
        (rule(colour='"red"'), "rule 'r1', 'colour': Extra inputs are not permitted"),
        (rule(id=""), "rule number 1, 'id': Field required"),
        (rule() + rule(), "the id 'r1' is used by two rules; ids must be unique"),
        ("[rules]\nx = 1\n", "unknown top-level key 'rules'; rules are written as [[rule]]"),
        ("rule = 3\n", "'rule' must be written as [[rule]] tables"),
        ('[[rule]\nid = "x"', "is not valid TOML: "),
    ],
)
def test_a_bad_rule_is_named_with_its_problem(text: str, expected: str) -> None:
    with pytest.raises(RulesFileError) as caught:
        parse_rules(text, "rules.toml")
    assert str(caught.value).startswith("rules.toml")
    assert expected in str(caught.value)


def test_the_second_rule_is_named_by_its_id() -> None:
    text = rule() + rule(id='"r2"', action='"allow"')
    with pytest.raises(RulesFileError, match=r"rule 'r2', 'action'"):
        parse_rules(text)


def test_a_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match=r"rules file .*missing.toml cannot be read"):
        load_rules(tmp_path / "missing.toml")
    binary = tmp_path / "rules.toml"
    binary.write_bytes(b"\xff\xfe[[rule]]")
    with pytest.raises(RulesFileError, match="is not UTF-8 text"):
        load_rules(binary)
    bad = tmp_path / "bad.toml"
    bad.write_text(rule(action='"ban"'))
    with pytest.raises(RulesFileError, match=rf"^The rules file {bad}: rule 'r1', 'action'"):
        load_rules(bad)
