"""What the API adapters get from the app: the services, and who is asking."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from iaforall.core.types import LOCAL_USER, UserId
from iaforall.services import Services

B = TypeVar("B", bound=BaseModel)


async def services(request: Request) -> Services:
    result: Services = request.app.state.services
    return result


async def user_of(request: Request) -> UserId:
    """The identity requests are scheduled under. Accounts and keys come with the people
    issue; until then every request is the local user's."""
    return LOCAL_USER


async def json_body(request: Request, model: type[B]) -> B:
    """The body parsed as JSON whatever its Content-Type (curl's `-d` sends a form type),
    with errors in the same shape as FastAPI's own validation."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
