"""Every error, in each API's own shape, in one place. Never a stack trace to the client."""

from __future__ import annotations

import json
import logging
from typing import Any, Literal, NamedTuple

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from iaforall.core.errors import IAForAllError, ServerBusy

log = logging.getLogger(__name__)


def openai_error_body(
    message: str, *, type: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def body_of(exc: IAForAllError) -> dict[str, Any]:
    body = openai_error_body(exc.message, type=exc.type, code=exc.code, param=exc.param)
    return {**body, **exc.extra}


def sse_error(exc: IAForAllError) -> bytes:
    """The error event sent when a stream fails after it started."""
    return b"data: " + json.dumps(body_of(exc)).encode() + b"\n\n"


def ollama_body(exc: IAForAllError) -> dict[str, Any]:
    """Ollama's shape: `{"error": "..."}`, with our stable `code` (the web app says the error
    in its page's language from it; Ollama's clients read only "error") and our extra fields
    beside it."""
    return {"error": exc.message, "code": exc.code, **exc.extra}


# Anthropic's error types, by HTTP status (https://docs.anthropic.com/en/api/errors).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",  # a model's engine stopped or could not start: try again
}


def anthropic_error_body(message: str, status: int) -> dict[str, Any]:
    """Anthropic's shape: `{"type": "error", "error": {"type": ..., "message": ...}}`."""
    default = "api_error" if status >= 500 else "invalid_request_error"
    kind = _ANTHROPIC_TYPES.get(status, default)
    return {"type": "error", "error": {"type": kind, "message": message}}


def anthropic_body(exc: IAForAllError) -> dict[str, Any]:
    return {**anthropic_error_body(exc.message, exc.status), **exc.extra}


def anthropic_sse_error(exc: IAForAllError) -> bytes:
    """Anthropic's `error` event, sent when a stream fails after it started."""
    return b"event: error\ndata: " + json.dumps(anthropic_body(exc)).encode() + b"\n\n"


Shape = Literal["openai", "ollama", "anthropic"]


def shape_of(path: str) -> Shape:
    """Which API a path belongs to: Ollama's under /api/ (iaforall.api.ollama), Anthropic's
    Messages under /v1/messages (iaforall.api.anthropic), OpenAI's otherwise."""
    if path.startswith("/api/"):
        return "ollama"
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return "anthropic"
    return "openai"


def error_response(exc: IAForAllError, *, shape: Shape = "openai") -> JSONResponse:
    headers = {}
    if isinstance(exc, ServerBusy):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if shape == "ollama":
        body = ollama_body(exc)
    elif shape == "anthropic":
        body = anthropic_body(exc)
    else:
        body = body_of(exc)
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _shaped(request: Request, body: dict[str, Any], status: int, **kw: Any) -> JSONResponse:
    shape = shape_of(request.url.path)
    if shape == "ollama":
        body = {"error": body["error"]["message"], "code": body["error"]["code"]}
    elif shape == "anthropic":
        body = anthropic_error_body(body["error"]["message"], status)
    return JSONResponse(body, status_code=status, **kw)


class _Problem(NamedTuple):
    message: str
    param: str | None
    code: str


def _describe_validation(exc: RequestValidationError) -> _Problem:
    errors = exc.errors()
    if not errors:
        return _Problem("The request is invalid.", None, code="invalid_request")
    first = errors[0]
    if first.get("type") == "json_invalid":
        return _Problem(
            f"The request body is not valid JSON: {first.get('ctx', {}).get('error', '')}".strip(),
            None,
            code="invalid_json",
        )
    loc = [str(p) for p in first.get("loc", ()) if _is_field(p)]
    param = ".".join(loc) or None
    message = str(first.get("msg", "invalid value"))
    if first.get("type") == "missing":
        return _Problem(
            f"Missing required parameter '{param}'.", param, code="missing_required_parameter"
        )
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    where = f" in '{param}'" if param else ""
    said = f"Invalid value{where}: {message}{more}."
    # A text over its length (a list over its count stays an invalid value): its own code, so
    # that the web app can say "too long" in the page's language.
    if first.get("type") in ("string_too_long", "too_long") and isinstance(first.get("input"), str):
        return _Problem(said, param, code="text_too_long")
    return _Problem(said, param, code="invalid_value")


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "body"}


def _is_field(part: str | int) -> bool:
    """Pydantic puts union branch tags ('str', 'list[str]', 'TextPart') in error locations;
    keep only the parts a client wrote: field names and list indexes."""
    if isinstance(part, int):
        return True
    return part.isidentifier() and part.islower() and part not in _TYPE_TAGS


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(IAForAllError)
    async def _domain(request: Request, exc: IAForAllError) -> JSONResponse:
        return error_response(exc, shape=shape_of(request.url.path))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param, code = _describe_validation(exc)
        return _shaped(
            request,
            openai_error_body(message, type="invalid_request_error", code=code, param=param),
            400,
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else None
        message = (
            f"No such endpoint: {request.method} {request.url.path}."
            if exc.status_code in (404, 405)
            else str(exc.detail)
        )
        return _shaped(
            request,
            openai_error_body(message, type="invalid_request_error", code=code),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _shaped(
            request,
            openai_error_body(
                "The server hit an unexpected error; it has been logged.",
                type="server_error",
                code="internal_error",
            ),
            500,
        )
