"""The web app's translation catalogues: one JSON file per language in static/i18n/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from iaforall.web import STATIC_DIR

CATALOGUES = STATIC_DIR / "i18n"
_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def languages() -> list[dict[str, str]]:
    """Every catalogue present: adding a language is adding its file."""
    found = []
    for path in sorted(CATALOGUES.glob("*.json")):
        if _CODE.match(path.stem):
            meta = _read(path).get("_meta", {})
            found.append({"code": path.stem, "name": str(meta.get("name", path.stem))})
    return found


def server_strings(code: str) -> dict[str, str]:
    """The strings the server writes itself (`_server` in a catalogue: Markdown exports), in
    one language, found by its primary tag too (`fr-CA` finds `fr`); none if unknown."""
    for candidate in (code, code.split("-")[0]):
        if _CODE.match(candidate) and (CATALOGUES / f"{candidate}.json").is_file():
            strings = _read(CATALOGUES / f"{candidate}.json").get("_server", {})
            return {k: v for k, v in strings.items() if isinstance(v, str)}
    return {}
