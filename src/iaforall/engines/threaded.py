"""Blocking work in a thread, its items read as they come on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

T = TypeVar("T")
Put = Callable[[T], None]
_END = object()


async def thread_items(work: Callable[[Put[T], threading.Event], None]) -> AsyncGenerator[T, None]:
    """Run `work(put, stop)` in a thread and yield what it puts, as it comes; an error it raises
    is raised here after the items before it. Closing the generator sets `stop` (the work checks
    it between pieces) and waits for the thread to end, so whoever holds a slot for the work
    keeps it until the work has really stopped."""
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def put(item: T) -> None:
        loop.call_soon_threadsafe(items.put_nowait, item)

    task = asyncio.ensure_future(asyncio.to_thread(work, put, stop))
    # Called on the loop after every `put` the thread made: the end comes last.
    task.add_done_callback(lambda _: items.put_nowait(_END))
    try:
        while (item := await items.get()) is not _END:
            yield item
        task.result()  # the work's error, if any
    finally:
        stop.set()
        if not task.done():
            with contextlib.suppress(Exception):  # its error has nobody left to read it
                await asyncio.shield(task)
        if task.done() and not task.cancelled():
            task.exception()  # read: no "never retrieved" warning
