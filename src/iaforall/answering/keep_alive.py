"""How long a model stays loaded after an answer: Ollama's `keep_alive`, which our OpenAI
extension (`iaforall.keep_alive`) takes too, and who may set it."""

from __future__ import annotations

import math
import re

from iaforall.core.errors import Forbidden, InvalidRequest
from iaforall.core.types import Principal

KEEP_ALIVE = re.compile(r"(-?\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def keep_alive_seconds(value: float | str | None) -> float | None:
    """Ollama's keep_alive: seconds, or a duration ("5m", "1h", "30s"); negative: forever."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    match = KEEP_ALIVE.fullmatch(value.strip())
    if match is None:
        raise InvalidRequest(
            f"Invalid keep_alive {value!r}: give seconds or a duration such as '5m' or '1h'.",
            param="keep_alive",
        )
    return float(match[1]) * _UNITS[match[2]]


def keep_alive_for(me: Principal, value: float | str | None, default: float) -> float | None:
    """A request's keep_alive, if its asker may set it. A model's residency is shared: only an
    administrator may pin it (negative), keep it past the server's default, or unload it (0)."""
    seconds = keep_alive_seconds(value)
    if seconds is None or me.is_admin or 0 < seconds <= (math.inf if default < 0 else default):
        return seconds
    raise Forbidden(
        f"Only an administrator may set keep_alive to {value!r}: the model is shared. Leave it "
        f"out, or give at most {default:g} seconds (the server's IAFORALL_KEEP_ALIVE).",
        param="keep_alive",
    )
