"""Server-sent events out of engine chunks, with zero per-token parsing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import TypeVar

from fastapi import Request

from iaforall.api.errors import sse_error
from iaforall.core.errors import IAForAllError
from iaforall.engines.protocol import Chunk

T = TypeVar("T")

DONE = b"data: [DONE]\n\n"


async def first_and_rest(
    chunks: AsyncGenerator[Chunk, None],
) -> tuple[Chunk | None, AsyncGenerator[Chunk, None]]:
    """Wait for the first chunk, so that errors before streaming get a real HTTP status."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        return None, chunks
    except BaseException:
        await chunks.aclose()
        raise
    return first, chunks


async def sse_events(
    first: Chunk | None,
    rest: AsyncGenerator[Chunk, None],
    *,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """`data:` frames, an error event if the engine fails mid-stream, then `[DONE]`."""
    try:
        chunk = first
        while chunk is not None:
            # The usage-only chunk goes only to clients that asked for it.
            if include_usage or not chunk.usage_only:
                yield b"data: " + chunk.data + b"\n\n"
            chunk = await anext(rest, None)
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
