"""The Responses API's stored answers: kept per person, read back whole, deleted for good."""

from __future__ import annotations

from typing import Any

import pytest

from iaforall.core.errors import NotFound
from iaforall.core.types import UserId
from iaforall.store.database import Database
from iaforall.store.responses import ResponseStore

ANN, BOB = UserId("ann"), UserId("bob")


def _response(rid: str, previous: str | None = None) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "model": "tiny:latest",
        "previous_response_id": previous,
        "output": [{"type": "message", "role": "assistant", "content": [{"text": "Élan"}]}],
    }


ITEMS = [{"id": "msg_1", "type": "message", "role": "user", "content": []}]


def test_a_response_is_read_back_as_it_was_kept(any_database: Database) -> None:
    store = ResponseStore(any_database)
    store.save(ANN, _response("resp_1"), ITEMS)
    store.save(ANN, _response("resp_2", previous="resp_1"), ITEMS * 2)
    kept = store.get(ANN, "resp_2")
    assert kept.response == _response("resp_2", previous="resp_1")
    assert kept.input_items == tuple(ITEMS * 2)


def test_nobody_reads_or_deletes_anothers_response(any_database: Database) -> None:
    store = ResponseStore(any_database)
    store.save(ANN, _response("resp_1"), ITEMS)
    with pytest.raises(NotFound) as read:
        store.get(BOB, "resp_1")
    with pytest.raises(NotFound):
        store.delete(BOB, "resp_1")
    assert store.get(ANN, "resp_1").response["id"] == "resp_1"  # still there
    assert "not yours" in read.value.message


def test_a_deleted_response_is_gone(any_database: Database) -> None:
    store = ResponseStore(any_database)
    store.save(ANN, _response("resp_1"), ITEMS)
    store.delete(ANN, "resp_1")
    with pytest.raises(NotFound):
        store.get(ANN, "resp_1")
    with pytest.raises(NotFound):
        store.delete(ANN, "resp_1")
