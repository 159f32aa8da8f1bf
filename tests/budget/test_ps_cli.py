"""`iaforall ps`: how "until when" reads."""

from __future__ import annotations

from typing import Any

import pytest

from iaforall.cli.ps import until

CASES = [
    pytest.param({"expires_in": None, "keep_alive": -1}, "forever", id="kept forever"),
    pytest.param({"expires_in": None, "keep_alive": 300}, "in use, then 5 min", id="busy"),
    pytest.param({"expires_in": None, "keep_alive": 30}, "in use, then 30 s", id="busy, short"),
    pytest.param({"expires_in": None}, "in use", id="an older server"),
    pytest.param({"expires_in": 90, "keep_alive": 300}, "90 s (at ", id="seconds"),
    pytest.param({"expires_in": 240, "keep_alive": 300}, "4 min (at ", id="minutes"),
    pytest.param({"expires_in": 7300, "keep_alive": 9000}, "2.0 h (at ", id="hours"),
]


@pytest.mark.parametrize(("model", "shown"), CASES)
def test_until(model: dict[str, Any], shown: str) -> None:
    assert until(model, now=0).startswith(shown)
