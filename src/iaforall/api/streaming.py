"""The HTTP sides of a streamed or awaited answer that every dialect shares: the place in
line as headers and SSE comments, and stopping the work when the client leaves."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

from iaforall.core.errors import IAForAllError
from iaforall.core.events import QueueUpdate

T = TypeVar("T")

DONE = b"data: [DONE]\n\n"

# Server-sent events go out as they come: no cache, and no buffering by a proxy in front.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def queue_headers(admission: QueueUpdate) -> dict[str, str]:
    """Position on arrival (0: served at once) and the wait then expected, in milliseconds."""
    return {
        "X-IAForAll-Queue-Position": str(admission.position),
        "X-IAForAll-Queue-Wait-Ms": str(round(admission.wait_s * 1000)),
    }


def queue_comment(update: QueueUpdate) -> bytes:
    """An SSE comment: clients ignore it, people and scripts can read it. `paused`: the
    answer stopped to give someone else a turn, and resumes where it was."""
    paused = " paused" if update.paused else ""
    return (
        f": queue position={update.position} wait_s={math.ceil(update.wait_s)}{paused}\n\n".encode()
    )


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
