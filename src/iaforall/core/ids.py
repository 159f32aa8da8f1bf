"""New identifiers for what the server stores (conversations, messages, images, knowledge
bases, documents, chunks): random, unguessable, the same shape everywhere."""

from __future__ import annotations

import uuid


def new_id() -> str:
    """32 lowercase hex digits from a random UUID."""
    return uuid.uuid4().hex
