"""The answer's events as OpenAI server-sent events: the engine's chunks relayed byte for byte
(on a 2-core machine every microsecond per token is taken from the engine), our `iaforall`
fields merged into the next text chunk (re-encoded once or twice an answer), the place in
line as comments, an error event if the answer fails once started, then `[DONE]`."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from iaforall.api.answering import merged
from iaforall.api.errors import sse_error
from iaforall.api.streaming import DONE, queue_comment
from iaforall.core.events import Chunk, Decided, Event, Failed, QueueUpdate


def with_fields(data: bytes, fields: dict[str, Any]) -> bytes:
    """A chunk with `iaforall` fields merged in (unknown fields: clients keep and ignore them)."""
    chunk = json.loads(data)
    chunk["iaforall"] = merged(chunk.get("iaforall", {}), fields)
    return json.dumps(chunk, ensure_ascii=False).encode()


async def sse(
    events: AsyncGenerator[Event, None], fields: dict[str, Any], *, include_usage: bool
) -> AsyncIterator[bytes]:
    """`fields` (the prompt, citations, the input rules' decisions) ride in the first text
    chunk, the output rules' decisions in the last one; the usage-only chunk goes only to
    clients that asked for it."""
    pending = fields
    async with contextlib.aclosing(events):  # a client that left stops its generation
        async for event in events:
            if isinstance(event, Chunk):
                if event.usage_only:
                    if include_usage:
                        yield b"data: " + event.data + b"\n\n"
                elif pending:
                    yield b"data: " + with_fields(event.data, pending) + b"\n\n"
                    pending = {}
                else:
                    yield b"data: " + event.data + b"\n\n"
            elif isinstance(event, QueueUpdate):
                yield queue_comment(event)
            elif isinstance(event, Decided):
                pending = merged(pending, event.field())
            elif isinstance(event, Failed):
                yield sse_error(event.error)
    yield DONE
