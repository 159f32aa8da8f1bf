"""The OpenAI Responses API's stored answers, always read and written on behalf of their owner:
another person's response is "not found", exactly as one that never existed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from iaforall.core.errors import NotFound
from iaforall.core.types import UserId
from iaforall.store.database import Database
from iaforall.store.tables import StoredResponse


@dataclass(frozen=True)
class KeptResponse:
    """A stored response: the Response object, and every input item it was given."""

    response: dict[str, Any]
    input_items: tuple[dict[str, Any], ...]


def not_found(response_id: str, param: str = "response_id") -> NotFound:
    return NotFound(
        f"No response '{response_id}' here: it was not stored (`store: false`), it was "
        "deleted, or it is not yours.",
        param=param,
    )


class ResponseStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def save(
        self, owner: UserId, response: dict[str, Any], input_items: Sequence[dict[str, Any]]
    ) -> None:
        size = len(json.dumps(response)) + len(json.dumps(list(input_items)))
        row = StoredResponse(
            id=response["id"],
            owner=owner,
            model=response["model"],
            previous_response_id=response.get("previous_response_id"),
            body=response,
            input_items=list(input_items),
            size=size,
        )
        with self.database.session() as session:
            session.add(row)

    def get(self, owner: UserId, response_id: str) -> KeptResponse:
        with self.database.session() as session:
            row = _owned(session, owner, response_id)
            return KeptResponse(row.body, tuple(row.input_items))

    def delete(self, owner: UserId, response_id: str) -> None:
        with self.database.session() as session:
            session.delete(_owned(session, owner, response_id))


def _owned(session: Session, owner: UserId, response_id: str) -> StoredResponse:
    row = session.scalar(
        select(StoredResponse).where(
            StoredResponse.id == response_id, StoredResponse.owner == owner
        )
    )
    if row is None:
        raise not_found(response_id)
    return row
