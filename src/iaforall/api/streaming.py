"""Server-sent events out of engine chunks, with zero per-token parsing, and the queue."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import TypeVar

from fastapi import Request

from iaforall.api.errors import sse_error
from iaforall.core.errors import IAForAllError
from iaforall.engines.protocol import Chunk
from iaforall.scheduling.dispatch import QueueUpdate

T = TypeVar("T")

DONE = b"data: [DONE]\n\n"


Item = Chunk | QueueUpdate


async def admitted(items: AsyncGenerator[Item, None]) -> QueueUpdate:
    """The request's place in line on arrival; errors before it (unknown model, full queue)
    are raised here, so they get a real HTTP status."""
    try:
        first = await anext(items)
    except BaseException:
        await items.aclose()
        raise
    if not isinstance(first, QueueUpdate):  # the dispatcher's contract: admission first
        await items.aclose()
        raise TypeError(f"expected the admission status first, got {first!r}")
    return first


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
    """Admission, then: served at once, wait for the first chunk (errors keep their HTTP
    status); made to wait, start at once with the admission, so the client sees the line."""
    admission = await admitted(items)
    if admission.position > 0:
        return admission, admission, items
    first, rest = await first_and_rest(items)
    return admission, first, rest


def queue_headers(admission: QueueUpdate) -> dict[str, str]:
    """Position on arrival (0: served at once) and the wait then expected, in milliseconds."""
    return {
        "X-IAForAll-Queue-Position": str(admission.position),
        "X-IAForAll-Queue-Wait-Ms": str(round(admission.wait_s * 1000)),
    }


def queue_comment(update: QueueUpdate) -> bytes:
    """An SSE comment: clients ignore it, people and scripts can read it."""
    return f": queue position={update.position} wait_s={math.ceil(update.wait_s)}\n\n".encode()


async def sse_events(
    first: Item | None,
    rest: AsyncGenerator[Item, None],
    *,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """Queue comments while waiting, `data:` frames, an error event if the engine fails
    mid-stream, then `[DONE]`."""
    try:
        item = first
        while item is not None:
            if isinstance(item, QueueUpdate):
                yield queue_comment(item)
            # The usage-only chunk goes only to clients that asked for it.
            elif include_usage or not item.usage_only:
                yield b"data: " + item.data + b"\n\n"
            item = await anext(rest, None)
    except IAForAllError as exc:
        yield sse_error(exc)
    finally:
        await rest.aclose()  # a client that left stops its generation at once
    yield DONE


class ClientDisconnected(IAForAllError):
    status = 499  # nginx's "client closed request": nobody is left to read it
    code = "client_disconnected"
    type = "invalid_request_error"


async def until_disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Run `work`, cancelling it if the client goes away (non-streaming requests)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(until_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        if not task.done():
            task.cancel()  # closes the engine connection: the engine stops generating
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise ClientDisconnected("The client closed the connection; the generation was stopped.")
    return task.result()
