"""What the API adapters get from the app: the services, and who is asking."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from iaforall.api.auth import authenticate, require_admin
from iaforall.core.errors import PayloadTooLarge
from iaforall.core.types import UserId
from iaforall.services import Services

B = TypeVar("B", bound=BaseModel)

__all__ = ["authenticate", "json_body", "limited_body", "require_admin", "services", "user_of"]


async def services(request: Request) -> Services:
    result: Services = request.app.state.services
    return result


async def user_of(request: Request) -> UserId:
    """The identity requests are scheduled under and data belongs to."""
    return (await authenticate(request)).user


async def limited_body(request: Request, limit: int) -> bytes:
    """The body, refused with a 413 as soon as it passes `limit` bytes (never held whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    received = bytearray()
    async for piece in request.stream():
        received += piece
        if len(received) > limit:
            raise _too_large(limit)
    return bytes(received)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the {limit // 1_000_000} MB allowed.")


async def json_body(request: Request, model: type[B], *, limit: int | None = None) -> B:
    """The body parsed as JSON whatever its Content-Type (curl's `-d` sends a form type),
    with errors in the same shape as FastAPI's own validation. The route family's limit
    (api/limits.py) bounds it; `limit` is a tighter one for this route."""
    raw = await request.body() if limit is None else await limited_body(request, limit)
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
