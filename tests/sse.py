"""Reading an event stream in tests."""

from __future__ import annotations

import json
from typing import Any


def events(text: str) -> list[tuple[str, Any]]:
    """(event name, data) pairs of an SSE body; unnamed events are 'message'."""
    found = []
    for block in text.strip().split("\n\n"):
        if not block:
            continue
        name, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        found.append((name, data if data == "[DONE]" else json.loads(data)))
    return found
