"""docs/policy.md's example is the one the tests use, and it loads."""

from __future__ import annotations

import re
from pathlib import Path

from iaforall.policy.rules import parse_rules
from tests.policy.samples import BILINGUAL

DOC = (Path(__file__).parents[2] / "docs" / "policy.md").read_text(encoding="utf-8")


def test_the_documented_example_is_the_tested_one() -> None:
    example = re.search(r"```toml\n(.*?)```", DOC, re.S)
    assert example is not None
    assert parse_rules(example.group(1)) == parse_rules(BILINGUAL)
