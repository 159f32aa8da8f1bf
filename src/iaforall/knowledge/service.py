"""The knowledge bases' parts, built together: the store, the retrieval index, the background
reading of documents, and the search that gives answers their sources."""

from __future__ import annotations

from dataclasses import dataclass

from iaforall.embeddings import Embeddings
from iaforall.knowledge.bases import KnowledgeBases
from iaforall.knowledge.index import KnowledgeIndex
from iaforall.knowledge.ingest import Ingestion
from iaforall.knowledge.retrieve import Retriever
from iaforall.settings import Settings
from iaforall.store.database import Database


@dataclass
class Knowledge:
    bases: KnowledgeBases
    index: KnowledgeIndex
    ingestion: Ingestion
    retriever: Retriever

    @classmethod
    def build(cls, settings: Settings, database: Database, embeddings: Embeddings) -> Knowledge:
        bases = KnowledgeBases(database, settings.store.home / "knowledge")
        index = KnowledgeIndex(
            database,
            vector_weight=settings.knowledge.retrieval_vector_weight,
            word_prefix=settings.knowledge.retrieval_word_prefix,
        )
        return cls(
            bases,
            index,
            # Reading a scan holds the OCR's threads, as many as a chat model's worker.
            Ingestion(
                bases,
                index,
                embeddings,
                settings.knowledge,
                reader_threads=settings.engine.resolved_threads(),
            ),
            Retriever(bases, index, embeddings),
        )

    async def close(self) -> None:
        await self.ingestion.close()
        self.index.close()
