"""Reading uploaded documents in the background, one at a time: parse (with OCR for scans, in
a child process killed at the document's time budget: reader_process.py), cut into passages,
embed them, then index and store them together. Reading and embedding both take turns with
everyone's requests in the scheduler's line, on behalf of the base's owner, within the CPU
budget (reading a PDF holds the OCR's threads, any other document one), and within what is
left of the document's budget. A document is `ready` with all its passages or `failed` with
none, and a restart picks up what was left queued or half-read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from iaforall.core.errors import IAForAllError, ServerBusy
from iaforall.core.ids import new_id
from iaforall.core.types import DocumentId, ModelId, UserId
from iaforall.embeddings import Embeddings
from iaforall.knowledge.bases import DocumentView, KnowledgeBases, NewChunk
from iaforall.knowledge.chunk import Chunk, chunk_document
from iaforall.knowledge.document import ParsedDocument
from iaforall.knowledge.errors import DocumentRefused, too_slow
from iaforall.knowledge.formats import may_need_ocr
from iaforall.knowledge.index import KnowledgeIndex
from iaforall.knowledge.limits import DocumentLimits
from iaforall.knowledge.ocr_pages import RapidOcrLines, ReadImage
from iaforall.knowledge.reader_process import DocumentReader
from iaforall.scheduling.cpu import choices
from iaforall.settings import KnowledgeSettings, available_cores

log = logging.getLogger(__name__)

BATCH = 64  # passages embedded per turn: progress moves, and others' requests get their turn
BUSY_WAIT = 0.5  # seconds before asking the encoder again when its queue is full
READER = ModelId("document reader")  # its name in the scheduler's line


@dataclass
class Ingestion:
    bases: KnowledgeBases
    index: KnowledgeIndex
    embeddings: Embeddings
    settings: KnowledgeSettings
    read_image: ReadImage | None = None
    reader_threads: int = 0  # the OCR's threads in the reader (0: every core): what a PDF holds

    def __post_init__(self) -> None:
        self.queue: asyncio.Queue[DocumentId] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.limits = DocumentLimits.from_settings(self.settings)
        self.threads = max(1, self.reader_threads or available_cores())
        if self.read_image is None:
            self.read_image = RapidOcrLines(self.threads)
        self.reader = DocumentReader(
            self.limits, self.settings.knowledge_ingest_seconds, self.read_image
        )

    async def start(self) -> None:
        """Start the worker, with what a previous run left to do."""
        for document in await asyncio.to_thread(self.bases.working):
            self.queue.put_nowait(document.id)
        self.task = asyncio.create_task(self._work(), name="knowledge-ingestion")

    def submit(self, document: DocumentView) -> None:
        self.queue.put_nowait(document.id)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        self.reader.close()

    async def idle(self) -> None:
        """Wait until every submitted document is read (for tests and benchmarks)."""
        await self.queue.join()

    async def _work(self) -> None:
        while True:
            document_id = await self.queue.get()
            try:
                await self.ingest(document_id)
            except Exception:  # one document's trouble never stops the others
                log.exception("reading document %s failed", document_id)
                await asyncio.to_thread(
                    self.bases.set_status,
                    document_id,
                    "failed",
                    error="The document could not be read because of an internal error; "
                    "the server's log has the details.",
                    error_code="internal_error",
                )
            finally:
                self.queue.task_done()

    async def ingest(self, document_id: DocumentId) -> None:
        found = await asyncio.to_thread(self._document, document_id)
        if found is None:
            return
        document, owner, model = found
        if not await self._status(document.id, "reading", progress=0.0):
            return
        path = self.bases.path_of(document.kb_id, document.id)
        try:
            parsed = await self._read(path, document.name, owner)
        except DocumentRefused as refused:
            await self._status(
                document.id, "failed", error=refused.message, error_code=refused.code
            )
            log.info("document %s (%s) refused: %s", document.id, document.name, refused.message)
            return
        chunks = await asyncio.to_thread(  # seconds for a large document: off the event loop
            chunk_document,
            parsed,
            size=self.settings.chunk_chars,
            overlap=self.settings.chunk_overlap,
        )
        counts = {
            "format": parsed.format.value,
            "pages": parsed.pages,
            "ocr_pages": parsed.ocr_pages,
        }
        if not await self._status(document.id, "embedding", progress=0.0, **counts):
            return
        try:
            vectors = await self._embed(document.id, chunks, owner, model, self.reader.last_seconds)
        except IAForAllError as exc:
            await self._status(document.id, "failed", error=exc.message, error_code=exc.code)
            return
        if vectors is None:
            return  # deleted meanwhile
        rows = [
            NewChunk(new_id(), c.index, c.text, c.location, c.page, c.start, c.end, c.ocr)
            for c in chunks
        ]
        entries = [
            (r.id, c.embedding_text, v) for r, c, v in zip(rows, chunks, vectors, strict=True)
        ]
        await asyncio.to_thread(self.index.add, document.kb_id, entries)
        stored = await asyncio.to_thread(self.bases.save_chunks, document.id, document.kb_id, rows)
        if not stored:  # deleted while it was being read: nothing of it may stay searchable
            await asyncio.to_thread(self.index.remove, document.kb_id, [r.id for r in rows])
            return
        if self.queue.empty():  # the base's next search need not read its vectors first
            await asyncio.to_thread(self.index.warm, [document.kb_id])
        log.info(
            "document %s (%s): %d passages from %d pages (%d by OCR)",
            document.id,
            document.name,
            len(rows),
            parsed.pages,
            parsed.ocr_pages,
        )

    async def _read(self, path: Path, name: str, owner: UserId) -> ParsedDocument:
        """The document parsed in its turn: it waits in the scheduler's line, on behalf of its
        owner, until the reader's threads fit the CPU budget (a full line: it asks again). It
        holds the OCR's threads only when it may run OCR (a PDF), else one; and the reader's
        child is started before: its start (seconds of imports on one core, once) held in the
        budget kept both cores from everyone's chats while no OCR ran."""
        scheduler = self.embeddings.scheduler
        ocr = await asyncio.to_thread(may_need_ocr, path)
        ways = choices(self.threads if ocr else 1)
        await self.reader.start()
        while True:
            try:
                async with scheduler.slot(READER, owner, ways=ways):
                    return await self.reader.read(path, name)
            except ServerBusy:  # the line is full, or it waited too long: it can wait more
                await asyncio.sleep(BUSY_WAIT)

    def _document(self, document_id: DocumentId) -> tuple[DocumentView, UserId, str] | None:
        for document in self.bases.working():
            if document.id == document_id:
                owner = self.bases.owner_of(document.kb_id)
                if owner is None:
                    return None
                return document, UserId(owner[0]), owner[1]
        return None

    async def _status(self, document_id: DocumentId, status: str, **fields: object) -> bool:
        return await asyncio.to_thread(self.bases.set_status, document_id, status, **fields)

    async def _embed(
        self,
        document_id: DocumentId,
        chunks: Sequence[Chunk],
        owner: UserId,
        model: str,
        spent: float,
    ) -> list[npt.NDArray[np.float32]] | None:
        """The passages' vectors, within what is left of the document's time budget after
        `spent` seconds of reading (the encoder's being busy with others is not counted)."""
        vectors: list[npt.NDArray[np.float32]] = []
        budget = self.settings.knowledge_ingest_seconds
        started = time.monotonic() - spent
        waited = 0.0
        for start in range(0, len(chunks), BATCH):
            if time.monotonic() - started - waited > budget:
                raise too_slow(budget)
            batch = [c.embedding_text for c in chunks[start : start + BATCH]]
            while True:
                try:
                    result = await self.embeddings.embed(model, batch, user=owner)
                    break
                except ServerBusy:  # others are embedding: this can wait its turn
                    await asyncio.sleep(BUSY_WAIT)
                    waited += BUSY_WAIT
            vectors.extend(result.vectors)
            done = len(vectors) / len(chunks)
            if not await self._status(document_id, "embedding", progress=round(done, 3)):
                return None
        return vectors
