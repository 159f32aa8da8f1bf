"""The moment a stream starts: what went wrong before it is raised (a real HTTP status), what
goes wrong after it is told inside the stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TypeVar

from iaforall.core.events import Chunk, Decided, QueueUpdate

T = TypeVar("T")

Item = QueueUpdate | Chunk | Decided


async def first_and_rest(
    items: AsyncGenerator[T, None],
) -> tuple[T | None, AsyncGenerator[T, None]]:
    """Wait for the first item, so that errors before streaming get a real HTTP status."""
    try:
        first = await anext(items)
    except StopAsyncIteration:
        return None, items
    except BaseException:
        await items.aclose()
        raise
    return first, items


async def start_stream(
    items: AsyncGenerator[Item, None],
) -> tuple[QueueUpdate, Item | None, AsyncGenerator[Item, None]]:
    """The admission (the dispatcher's first item: errors before it, such as a full queue,
    are raised here), then: served at once, wait for the first chunk too, so that early errors
    keep their HTTP status; made to wait, start at once, so the client sees its place in line."""
    admission, rest = await first_and_rest(items)
    if not isinstance(admission, QueueUpdate):  # the dispatcher's contract: admission first
        await items.aclose()
        raise TypeError(f"expected the admission status first, got {admission!r}")
    if admission.position > 0:
        return admission, admission, rest
    first, rest = await first_and_rest(rest)
    return admission, first, rest
