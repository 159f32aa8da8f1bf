"""Every error, in each API's own shape, in one place. Never a stack trace to the client."""

from __future__ import annotations

import json
import logging
from typing import Any

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
    """Ollama's shape: `{"error": "..."}` (and our extra fields beside it)."""
    return {"error": exc.message, **exc.extra}


def is_ollama(request: Request) -> bool:
    """The Ollama-compatible API lives under /api/ (iaforall.api.ollama)."""
    return request.url.path.startswith("/api/")


def error_response(exc: IAForAllError, *, ollama: bool = False) -> JSONResponse:
    headers = {}
    if isinstance(exc, ServerBusy):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    body = ollama_body(exc) if ollama else body_of(exc)
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _shaped(request: Request, body: dict[str, Any], status: int, **kw: Any) -> JSONResponse:
    if is_ollama(request):
        body = {"error": body["error"]["message"]}
    return JSONResponse(body, status_code=status, **kw)


def _describe_validation(exc: RequestValidationError) -> tuple[str, str | None, str]:
    errors = exc.errors()
    if not errors:
        return "The request is invalid.", None, "invalid_request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return (
            f"The request body is not valid JSON: {first.get('ctx', {}).get('error', '')}".strip(),
            None,
            "invalid_json",
        )
    loc = [str(p) for p in first.get("loc", ()) if _is_field(p)]
    param = ".".join(loc) or None
    message = str(first.get("msg", "invalid value"))
    if first.get("type") == "missing":
        return f"Missing required parameter '{param}'.", param, "missing_required_parameter"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    where = f" in '{param}'" if param else ""
    return f"Invalid value{where}: {message}{more}.", param, "invalid_value"


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
        return error_response(exc, ollama=is_ollama(request))

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
