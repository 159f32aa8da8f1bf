"""A backup as an HTTP reply: the archive is written by a thread into a small bounded queue
and sent as it comes, so it is never held whole in memory or on disk (only the database's
copy is). A client that goes away stops the writer."""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncGenerator, Callable

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from iaforall.backup.write import BackupSummary, Snapshot, write_archive

CHUNK = 256 * 1024
QUEUED_CHUNKS = 8  # at most 2 MB waiting for a slow client
WAIT = 0.5  # seconds between looks at whether the other side gave up


class _Stopped(Exception):
    """The client went away: the writer stops where it is."""


class _QueueWriter:
    """A write-only file whose bytes go into `chunks`, CHUNK at a time."""

    def __init__(self, chunks: queue.Queue[bytes | None], stopped: threading.Event) -> None:
        self._chunks = chunks
        self._stopped = stopped
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) >= CHUNK:
            self._put(bytes(self._buffer[:CHUNK]))
            del self._buffer[:CHUNK]
        return len(data)

    def flush(self) -> None:
        """Nothing: bytes go out a chunk at a time (tar flushes after every member)."""

    def close(self) -> None:
        """The last bytes, then the end."""
        if self._buffer:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        self._put(None)

    def _put(self, item: bytes | None) -> None:
        while not self._stopped.is_set():
            try:
                self._chunks.put(item, timeout=WAIT)
                return
            except queue.Full:
                continue
        raise _Stopped


class ClosingStreamingResponse(StreamingResponse):
    """A streamed reply whose generator is closed when the reply ends, however it ends: a
    client that goes away between two chunks leaves it suspended, and only closing it stops
    the backup's writer (and removes its copy of the database) at once."""

    def __init__(self, content: AsyncGenerator[bytes, None], **kwargs: object) -> None:
        super().__init__(content, **kwargs)  # type: ignore[arg-type]
        self._generator = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._generator.aclose()


async def stream_backup(
    snapshot: Snapshot, finished: Callable[[BackupSummary], None]
) -> AsyncGenerator[bytes, None]:
    """The archive's bytes; `finished` is called once the last one was sent. The snapshot is
    closed in every case."""
    chunks: queue.Queue[bytes | None] = queue.Queue(QUEUED_CHUNKS)
    stopped = threading.Event()
    result: list[BackupSummary] = []
    failed: list[BaseException] = []

    def produce() -> None:
        writer = _QueueWriter(chunks, stopped)
        try:
            result.append(write_archive(snapshot, writer))  # type: ignore[arg-type]
            writer.close()
        except _Stopped:
            return
        except BaseException as e:  # told to the reader, which ends the reply cut short
            failed.append(e)
        finally:
            snapshot.close()

    thread = threading.Thread(target=produce, name="backup-download", daemon=True)
    thread.start()
    try:
        while True:
            try:
                chunk = await run_in_threadpool(chunks.get, True, WAIT)
            except queue.Empty:
                if not thread.is_alive() and chunks.empty():
                    break
                continue
            if chunk is None:
                break
            yield chunk
    finally:
        stopped.set()
    if failed:
        raise failed[0]
    if result:
        finished(result[0])
