"""The ASGI application: `create_app(settings)` wires the services; nothing global."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from iaforall import __version__
from iaforall.api import system
from iaforall.api.admin import router as admin_router
from iaforall.api.anthropic.router import router as anthropic_router
from iaforall.api.audio import router as audio_router
from iaforall.api.auth import authenticate
from iaforall.api.backup import router as backup_router
from iaforall.api.docs import install_docs
from iaforall.api.errors import install_error_handlers
from iaforall.api.knowledge import router as knowledge_router
from iaforall.api.limits import BodyLimits
from iaforall.api.ollama import public as ollama_public
from iaforall.api.ollama import routers as ollama_routers
from iaforall.api.openai.embeddings import router as embeddings_router
from iaforall.api.openai.images import router as images_router
from iaforall.api.openai.models import router as models_router
from iaforall.api.openai.router import router as openai_router
from iaforall.api.openapi import document_bodies
from iaforall.api.people import router as people_router
from iaforall.api.policy import install_policy
from iaforall.api.realtime import router as realtime_router
from iaforall.api.responses.router import router as responses_router
from iaforall.api.web.images import router as web_images_router
from iaforall.api.web.pages import mount_static
from iaforall.api.web.pages import router as web_pages
from iaforall.api.web.pictures import router as web_pictures_router
from iaforall.api.web.reply import router as web_reply_router
from iaforall.api.web.router import router as web_router
from iaforall.cluster.engine import serve_factory
from iaforall.cluster.gateway import ClusterGateway
from iaforall.core.errors import IAForAllError
from iaforall.core.types import ModelId
from iaforall.embeddings import Embeddings
from iaforall.engines.budget import budget_bytes
from iaforall.engines.installed import installed_runtimes
from iaforall.engines.llamacpp.factory import llamacpp_factory
from iaforall.engines.pool import EngineFactory, EnginePool
from iaforall.engines.runtime import Runtimes
from iaforall.engines.warm_up import available_memory, room, warm_up
from iaforall.knowledge.service import Knowledge
from iaforall.models.store import ModelStore
from iaforall.observability.metrics import Metrics
from iaforall.people.accounts import Accounts
from iaforall.people.gate import Gate
from iaforall.people.limiter import LoginLimiter
from iaforall.people.password_slots import PasswordSlots
from iaforall.people.secrets import new_token
from iaforall.scheduling import machine
from iaforall.scheduling.cpu import ThreadChoice
from iaforall.scheduling.dispatch import Dispatcher
from iaforall.scheduling.loop import Scheduler
from iaforall.scheduling.machine import MachineLoad
from iaforall.services import Services
from iaforall.settings import Settings, available_cpus
from iaforall.store.conversations import Conversations
from iaforall.store.database import Database
from iaforall.store.private import private_dir
from iaforall.vision import ImageReader
from iaforall.vision.ocr import RegisteredOcr

log = logging.getLogger(__name__)


def build_services(
    settings: Settings, factory: EngineFactory | None = None, runtimes: Runtimes | None = None
) -> Services:
    private_dir(settings.store.home)  # the database, documents and logs are people's data
    store = ModelStore(settings.store.home, install_missing=settings.store.install_missing)
    engine = settings.engine
    timeout = settings.scheduling.request_timeout
    cluster = ClusterGateway(settings) if settings.cluster.cluster else None
    if factory is None:
        factory = (
            serve_factory(cluster, engine, read_timeout=timeout)
            if cluster
            else llamacpp_factory(engine, settings.store.home / "logs", read_timeout=timeout)
        )
    pool = EnginePool(
        store,
        factory,
        slots=engine.parallel,
        context_length=engine.context_length,
        keep_alive=engine.keep_alive,
        # On a cluster, Ray places each replica where its memory is free.
        memory_budget=0 if cluster else budget_bytes(engine.memory_budget_mb),
        wait=settings.scheduling.queue_timeout,
        runtimes=runtimes or Runtimes(installed_runtimes(settings)),
        threads=engine.resolved_threads(),
        # Threads left to the machine: a worker follows what the CPU budget gives its jobs.
        follow_budget=engine.threads == 0 and not cluster,
    )
    scheduler = Scheduler(
        slots_for=_slots_for(pool, cluster),
        max_queue=settings.scheduling.max_queue,
        queue_timeout=settings.scheduling.queue_timeout,
        # Models on a cluster have replicas of their own: none waits for another's cores.
        max_active_models=0 if cluster else settings.scheduling.max_active_models,
        # One CPU budget for every job that runs here: chat, speech, OCR, embeddings.
        cpu_cores=settings.scheduling.resolved_cpu_cores(),
        threads_for=_threads_for(pool, cluster),
        preempt=settings.scheduling.preempt,
    )
    metrics = Metrics()
    dispatcher = Dispatcher(
        scheduler, pool, metrics, request_timeout=settings.scheduling.request_timeout
    )
    database = Database(settings.database_url)
    people = settings.people
    accounts = Accounts(database, people.session_hours)
    embeddings = Embeddings(settings, store, scheduler, runtimes=pool.runtimes)
    return Services(
        settings,
        store,
        pool,
        scheduler,
        dispatcher,
        metrics,
        database,
        Conversations(database),
        accounts,
        LoginLimiter(
            people.login_attempts,
            people.login_window,
            address_attempts=people.login_address_attempts,
        ),
        PasswordSlots(people.password_hash_concurrency, people.password_hash_wait),
        Gate(accounts, people),
        embeddings,
        Knowledge.build(settings, database, embeddings),
        ImageReader(settings.images, RegisteredOcr(pool.runtimes, scheduler)),
        cluster=cluster,
        # Left to the machine (0), the budget follows what other programs leave us.
        machine=MachineLoad() if settings.scheduling.cpu_cores == 0 else None,
    )


def _slots_for(pool: EnginePool, cluster: ClusterGateway | None) -> Callable[[ModelId], int]:
    """Jobs at once per model: a runtime's own (they run here, even with a cluster), else the
    pool's or the cluster's."""
    if cluster is None:
        return pool.slots_for

    def slots_for(model: ModelId) -> int:
        runtime = pool.runtimes.slots_for(model)
        return cluster.slots_for(model) if runtime is None else runtime

    return slots_for


def _threads_for(
    pool: EnginePool, cluster: ClusterGateway | None
) -> Callable[[ModelId], tuple[ThreadChoice, ...]]:
    """The threads a job holds here: a runtime's, or a llama.cpp worker's; none for a model
    served by a cluster's replicas (they run elsewhere)."""
    if cluster is None:
        return pool.threads_for

    def threads_for(model: ModelId) -> tuple[ThreadChoice, ...]:
        return pool.runtimes.threads_for(model) or ()

    return threads_for


async def _follow_machine(svc: Services) -> None:
    assert svc.machine is not None
    cpus = available_cpus()
    root = os.getpid()
    await machine.follow_forever(
        svc.scheduler, len(cpus), lambda: machine.read_machine(root, cpus), svc.machine
    )


def _offer_setup(svc: Services) -> None:
    """With accounts on and nobody yet, a one-time link creates the first admin."""
    if not svc.settings.people.auth or svc.accounts.count_users():
        return
    svc.setup_token = new_token()
    server = svc.settings.server
    log.warning(
        "No administrator yet. Create the first one at http://%s:%s/#setup=%s (this link "
        "works once), or with `iaforall users create-admin NAME`.",
        server.host,
        server.port,
        svc.setup_token,
    )


async def _preload(svc: Services) -> None:
    name = svc.settings.server.model
    try:
        await svc.pool.load(name)
    except IAForAllError as exc:
        log.warning("the default model %s was not preloaded: %s", name, exc.message)


async def _warm(svc: Services) -> None:
    """The default model first (when preloaded), then the voice in what memory is left."""
    if svc.settings.server.preload:
        await _preload(svc)
    if svc.settings.voice.warm_up:
        pool = svc.pool
        left = room(pool.memory_budget, pool.memory_used(), available_memory())
        await warm_up(pool.runtimes, left)


def create_app(
    settings: Settings | None = None,
    *,
    factory: EngineFactory | None = None,
    runtimes: Runtimes | None = None,
) -> FastAPI:
    """`runtimes`: the Whisper, voice, OCR and encoder runtimes (default: those installed);
    whichever is given, the app closes them at shutdown."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = build_services(settings, factory, runtimes)
        await asyncio.to_thread(svc.database.upgrade)
        await asyncio.to_thread(_offer_setup, svc)
        app.state.services = svc
        await svc.knowledge.ingestion.start()
        tasks = [asyncio.create_task(svc.pool.reap_forever())]
        if svc.cluster:  # a cluster that cannot be joined stops the start, with the reason
            await svc.cluster.start()
            tasks.append(asyncio.create_task(svc.cluster.watch_forever()))
        tasks.append(asyncio.create_task(_warm(svc)))
        if svc.machine is not None:  # the CPU budget follows what other programs leave us
            tasks.append(asyncio.create_task(_follow_machine(svc)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await svc.knowledge.close()
            await svc.pool.close()  # the runtimes with it
            if svc.cluster:
                await svc.cluster.close()
            await svc.embeddings.close()
            svc.database.close()

    app = FastAPI(
        title="IAForAll",
        version=__version__,
        description="A libre, private, fair AI server: OpenAI-compatible API on local models.",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs: offline, and behind the API's credentials
        redoc_url=None,
        openapi_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimits, settings=settings)
    signed_in = [Depends(authenticate)]
    app.include_router(models_router, dependencies=signed_in)
    app.include_router(openai_router, dependencies=signed_in)
    app.include_router(anthropic_router, dependencies=signed_in)
    app.include_router(embeddings_router, dependencies=signed_in)
    app.include_router(responses_router, dependencies=signed_in)
    app.include_router(audio_router, dependencies=signed_in)
    app.include_router(images_router, dependencies=signed_in)
    app.include_router(realtime_router)  # checks who asks itself (a socket has no Request)
    app.include_router(knowledge_router, dependencies=signed_in)
    for ollama_router in ollama_routers:
        app.include_router(ollama_router, dependencies=signed_in)
    app.include_router(ollama_public)
    app.include_router(system.router)
    app.include_router(web_router, dependencies=signed_in)
    app.include_router(web_reply_router, dependencies=signed_in)
    app.include_router(web_images_router, dependencies=signed_in)
    app.include_router(web_pictures_router, dependencies=signed_in)
    app.include_router(web_pages)
    app.include_router(people_router)
    app.include_router(admin_router)
    app.include_router(backup_router)
    install_docs(app)
    install_policy(app, settings)  # the rules file is read here: a bad one stops the start
    mount_static(app)
    document_bodies(app)
    return app
