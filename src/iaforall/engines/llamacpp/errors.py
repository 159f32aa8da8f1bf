"""llama.cpp server error bodies -> our domain errors."""

from __future__ import annotations

import json

from iaforall.core.errors import (
    ContextLengthExceeded,
    EngineUnavailable,
    IAForAllError,
    InvalidRequest,
)


def error_from_body(status: int, body: bytes) -> IAForAllError:
    try:
        error = json.loads(body).get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {"message": str(error)}
    message = str(error.get("message") or body[:500].decode(errors="replace") or "no detail")
    kind = error.get("type")
    if kind == "exceed_context_size_error":
        return ContextLengthExceeded(
            f"This request needs {error.get('n_prompt_tokens', '?')} tokens but the model's "
            f"context holds {error.get('n_ctx', '?')}. Shorten the conversation or start a new "
            "one.",
            param="messages",
        )
    if 400 <= status < 500:
        return InvalidRequest(f"The model refused the request: {message}")
    return EngineUnavailable(f"The model's engine failed: {message}")
