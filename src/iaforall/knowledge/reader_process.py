"""Documents parsed in a child process, which is killed when one takes longer than its budget.

Parsers are linear in their input, but a large or pathological file (a PDF whose pages draw a
million tiny glyphs, a workbook at the edge of every limit) can still take minutes, and a
thread cannot be stopped: it would keep its core and memory after its caller gave up. A child
process can be killed at the deadline, and a crash in a C library (or the kernel killing it for
memory) takes only it down. One child serves the documents one after another, so its start
(~1 s of imports) is paid once, not per file; after a kill, the next document starts a new one.

    reader = DocumentReader(limits, seconds=600, read_image=RapidOcrLines())
    await reader.start()  # optional: else the first read starts it
    parsed = await reader.read(path, "notes.pdf")  # DocumentRefused when over the budget
    reader.close()
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from iaforall.knowledge.document import ParsedDocument
from iaforall.knowledge.errors import DocumentRefused, UnreadableDocument, too_slow
from iaforall.knowledge.limits import DocumentLimits
from iaforall.knowledge.ocr_pages import ReadImage
from iaforall.knowledge.parse import parse_document

START_SECONDS = 120.0  # for the child's imports, not counted in a document's budget
READY = "ready"
JOIN_SECONDS = 5.0  # for a dead child's exit code


class ReaderFailed(RuntimeError):
    """The child reported an error that is not a refusal (a bug): its traceback."""


@dataclass
class DocumentReader:
    limits: DocumentLimits
    seconds: float
    read_image: ReadImage | None = None
    last_seconds: float = field(default=0.0, init=False)
    _child: tuple[BaseProcess, Connection] | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    async def read(self, path: Path, filename: str) -> ParsedDocument:
        """The parsed document, or DocumentRefused: the parsers' own refusals, a budget passed
        (`reading_too_long`) or the child dying (`reader_stopped`). `last_seconds` is then how
        long the child took (its start not counted)."""
        return await asyncio.to_thread(self._read, path, filename)

    @property
    def started(self) -> bool:
        """Whether the child is running (a read then pays no start)."""
        return self._child is not None and self._child[0].is_alive()

    async def start(self) -> None:
        """Start the child now if it is not running (`read` would): its start is seconds of
        imports on one core, paid once, which the caller may not want to count as reading."""
        await asyncio.to_thread(self._start)

    def close(self) -> None:
        """Kill the child (a document being read fails): for shutdown."""
        self._stop()

    def _start(self) -> None:
        with self._lock:
            self._started()

    def _read(self, path: Path, filename: str) -> ParsedDocument:
        with self._lock:  # one document at a time: the child reads them in turn
            process, connection = self._started()
            sent = time.monotonic()
            connection.send((path, filename))
            ready = connection.poll(self.seconds)
            self.last_seconds = time.monotonic() - sent
            if not ready:
                self._stop()
                raise too_slow(self.seconds)
            try:
                reply = connection.recv()
            except (EOFError, OSError):  # killed (out of memory, closed) or crashed
                process.join(JOIN_SECONDS)
                why = _why_stopped(process.exitcode)
                self._stop()
                raise UnreadableDocument(
                    f"Reading this document stopped the document reader ({why}). The file may "
                    "be damaged, or need more memory than the server has for one file.",
                    code="reader_stopped",
                ) from None
        kind, *rest = reply
        if kind == "parsed":
            parsed: ParsedDocument = rest[0]
            return parsed
        if kind == "refused":
            refusal, message, code = rest
            raise refusal(message, code=code)
        raise ReaderFailed(rest[0])

    def _started(self) -> tuple[BaseProcess, Connection]:
        if self._child is not None and self._child[0].is_alive():
            return self._child
        self._stop()
        context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        ours, theirs = context.Pipe()
        process = context.Process(
            target=serve,
            args=(theirs, self.limits, self.read_image),
            name="iaforall-document-reader",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._child = (process, ours)
        try:
            started = ours.poll(START_SECONDS) and ours.recv() == READY
        except (EOFError, OSError):  # it died while starting
            started = False
        if not started:
            self._stop()
            raise RuntimeError("the document reader process did not start")
        return self._child

    def _stop(self) -> None:
        if self._child is None:
            return
        process, connection = self._child
        self._child = None
        process.kill()
        process.join()
        connection.close()


def _why_stopped(exitcode: int | None) -> str:
    if exitcode == -signal.SIGKILL:
        return "it was killed, most often because the system ran out of memory"
    if exitcode is not None and exitcode < 0:
        return f"it crashed with {signal.Signals(-exitcode).name}"
    return f"it exited with code {exitcode}"


def serve(connection: Connection, limits: DocumentLimits, read_image: ReadImage | None) -> None:
    """The child: reads each (path, name) it is sent, answers with the document or why not."""
    connection.send(READY)
    while True:
        try:
            path, filename = connection.recv()
        except EOFError:  # the server is gone
            return
        try:
            reply: tuple[object, ...] = (
                "parsed",
                parse_document(path, filename, limits, read_image=read_image),
            )
        except DocumentRefused as refused:
            reply = ("refused", type(refused), refused.message, refused.code)
        except Exception:
            reply = ("failed", traceback.format_exc())
        connection.send(reply)
