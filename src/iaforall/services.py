"""The long-lived parts of a running server, built once by `app.create_app`'s lifespan."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from iaforall.answering import Pipeline
from iaforall.cluster.gateway import ClusterGateway
from iaforall.embeddings import Embeddings
from iaforall.engines.images.kept import KeptPictures
from iaforall.engines.pool import EnginePool
from iaforall.knowledge.service import Knowledge
from iaforall.models.store import ModelStore
from iaforall.observability.metrics import Metrics
from iaforall.people.accounts import Accounts
from iaforall.people.gate import Gate
from iaforall.people.limiter import LoginLimiter
from iaforall.people.password_slots import PasswordSlots
from iaforall.people.storage import Storage
from iaforall.policy.gate import Policy
from iaforall.scheduling.dispatch import Dispatcher
from iaforall.scheduling.loop import Scheduler
from iaforall.scheduling.machine import MachineLoad
from iaforall.settings import Settings
from iaforall.store.conversations import Conversations
from iaforall.store.database import Database
from iaforall.vision import ImageReader


@dataclass
class Services:
    settings: Settings
    store: ModelStore
    pool: EnginePool
    scheduler: Scheduler
    dispatcher: Dispatcher
    metrics: Metrics
    database: Database
    conversations: Conversations
    accounts: Accounts
    login_limiter: LoginLimiter
    password_slots: PasswordSlots
    gate: Gate
    embeddings: Embeddings
    knowledge: Knowledge
    images: ImageReader  # images in chat: checked, and read by the pool's OCR runtime
    cluster: ClusterGateway | None = None  # engines on a Ray cluster (IAFORALL_CLUSTER)
    # The one-time token that creates the first admin; None once there is one.
    setup_token: str | None = None
    started_at: float = field(default_factory=time.time)
    # Other programs' load on our cores, when the CPU budget follows it (IAFORALL_CPU_CORES=0).
    machine: MachineLoad | None = None
    # What each person keeps on the server, against their storage quota.
    storage: Storage = field(init=False)
    # Drawn pictures kept for their links (`response_format: url`), for their owners only.
    pictures: KeptPictures = field(init=False)

    def __post_init__(self) -> None:
        self.storage = Storage(self.database, self.accounts, self.settings.people)
        self.pictures = KeptPictures(self.settings.drawing.draw_keep_urls)

    def pipeline(self, policy: Policy) -> Pipeline:
        """The one answer pipeline, under these rules."""
        return Pipeline(
            dispatcher=self.dispatcher,
            gate=self.gate,
            pool=self.pool,
            retriever=self.knowledge.retriever,
            reader=self.images,
            policy=policy,
            default_keep_alive=self.settings.engine.keep_alive,
        )
