"""Ollama's model endpoints: /api/version, tags, show, ps, delete, copy, pull.

Models stay plain GGUF files in the store (`iaforall.models.store`); the store's sha256 is the
`digest`. Removing, copying and pulling change the server for everyone: administrators only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from iaforall import __version__
from iaforall.api.deps import json_body, require_admin, services
from iaforall.api.errors import ollama_body
from iaforall.api.ollama.convert import ndjson
from iaforall.api.ollama.schemas import CopyBody, NameBody, PullBody
from iaforall.api.openapi import json_doc
from iaforall.core.errors import Conflict, IAForAllError, ModelNotFound, ModelStoreError
from iaforall.core.types import ModelId
from iaforall.engines.installed import installed_runtimes
from iaforall.engines.tts.espeak import find
from iaforall.models.gguf_meta import read_fields
from iaforall.models.image_pull import hub_holds_image_model, pull_hub
from iaforall.models.packaged import UnknownModel
from iaforall.models.projector import projector_for
from iaforall.models.pull import HubSource, PackagedSource, parse_source
from iaforall.models.pull import pull as pull_model
from iaforall.models.runtime_packages import BuiltinVoices, RuntimeModel, find_runtime_model
from iaforall.models.runtime_store import RuntimeStore
from iaforall.models.store import ModelInfo
from iaforall.services import Services

router = APIRouter(prefix="/api", tags=["Ollama-compatible"])
# What Ollama's clients probe before signing in: is a server there, which version.
public = APIRouter(tags=["Ollama-compatible"])

ServicesDep = Annotated[Services, Depends(services)]
Admin = [Depends(require_admin)]
FOREVER = datetime(2318, 1, 1, tzinfo=UTC)  # what Ollama shows for keep_alive -1


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def details(info: ModelInfo) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": info.family,
        "families": [info.family],
        "parameter_size": info.parameter_size or "",
        "quantization_level": info.quantization or "",
    }


def _tag(info: ModelInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "model": info.name,
        "modified_at": iso(info.added_at),
        "size": info.size,
        "digest": info.sha256,
        "details": details(info),
    }


@public.get("/api/version")
@public.head("/api/version", operation_id="version_head")  # its own id in the API schema
async def version() -> dict[str, str]:
    return {"version": __version__}


@public.head("/", include_in_schema=False)
async def alive() -> Response:
    """`HEAD /`, as Ollama's own command line checks that its server runs (GET / is the
    web app, or a liveness text for non-browsers)."""
    return Response(status_code=200)


@router.get("/tags")
async def tags(svc: ServicesDep) -> dict[str, Any]:
    infos = await asyncio.to_thread(svc.store.list)
    return {"models": [_tag(info) for info in infos]}


def _info(svc: Services, name: str) -> ModelInfo:
    info = svc.store.get(name)
    if info is None:
        raise ModelNotFound(name)
    return info


@router.post("/show", openapi_extra=json_doc(NameBody))
async def show(request: Request, svc: ServicesDep) -> dict[str, Any]:
    body = await json_body(request, NameBody)
    info = _info(svc, body.target)
    fields = await asyncio.to_thread(read_fields, info.path)
    template = fields.pop("tokenizer.chat_template", "")
    capabilities = ["completion"]
    if info.supports_tools:
        capabilities.append("tools")
    if projector_for(info.path) is not None:
        capabilities.append("vision")
    _, caps = svc.pool.resolve(info.name)
    return {
        "license": str(fields.get("general.license", "")),
        # the file's name, not its place on this machine
        "modelfile": f"# IAForAll serves this plain GGUF file as it is.\nFROM {info.path.name}\n",
        "parameters": f"num_ctx {caps.context_length}",
        "template": template if isinstance(template, str) else "",
        "details": details(info),
        "model_info": {k: v for k, v in fields.items() if not isinstance(v, list)},
        "capabilities": capabilities,
        "modified_at": iso(info.added_at),
    }


@router.get("/ps")
async def ps(svc: ServicesDep) -> dict[str, Any]:
    models = []
    now_wall, now = datetime.now(UTC), time.monotonic()
    await svc.pool.measure()
    for model, resident in svc.pool.residents().items():
        info = svc.store.get(model)
        if info is None:
            continue
        expires = svc.pool.expires_at(resident)
        keep = svc.pool.keep_alive_of(resident)
        if keep < 0:
            until = FOREVER
        else:  # a busy model: kept for keep_alive after its last request ends
            left = keep if expires is None else max(0.0, expires - now)
            until = now_wall + timedelta(seconds=left)
        models.append(
            {
                **_tag(info),
                "size": resident.counted or info.size,  # what the memory budget counts
                "size_vram": 0,  # CPU only
                "expires_at": iso(until),
                "context_length": resident.engine.capabilities.context_length,
            }
        )
    return {"models": models}


@router.delete("/delete", dependencies=Admin, openapi_extra=json_doc(NameBody))
async def delete(request: Request, svc: ServicesDep) -> Response:
    body = await json_body(request, NameBody)
    runtime_model = find_runtime_model(body.target)
    if isinstance(runtime_model, RuntimeModel):
        await _delete_runtime(svc, runtime_model)
        return Response(status_code=200)
    if await _delete_image_model(svc, body.target):
        return Response(status_code=200)
    info = _info(svc, body.target)
    resident = svc.pool.residents().get(ModelId(info.name))
    if resident is not None:
        if resident.in_use:
            raise Conflict(
                f"{info.name} is answering a request; delete it once it is done.", param="model"
            )
        await svc.pool.unload(info.name)
    await asyncio.to_thread(svc.store.remove, info.name)
    return Response(status_code=200)


async def _delete_runtime(svc: Services, model: RuntimeModel) -> None:
    """A runtime's model out of the store; its runtime is closed and forgotten unless a
    Python package still brings the model."""
    runtimes = RuntimeStore(svc.settings.store.home)
    if runtimes.get(model.name) is None:
        raise ModelNotFound(model.name, install=f"iaforall pull {model.name}")
    made = ModelId(model.name)
    if svc.scheduler.running(made):
        raise Conflict(
            f"{model.name} is answering a request; delete it once it is done.", param="model"
        )
    await svc.pool.runtimes.remove(made)
    await asyncio.to_thread(runtimes.remove, model.name)
    svc.pool.runtimes.add(await asyncio.to_thread(installed_runtimes, svc.settings))


async def _delete_image_model(svc: Services, name: str) -> bool:
    """An image model out of the store, its runtime closed and forgotten; False when `name`
    is not an image model."""
    model = svc.pool.runtimes.find(name)
    spec = next((s for s in svc.pool.runtimes.specs() if s.model == model), None)
    if model is None or spec is None or spec.kind != "image":
        return False
    if svc.scheduler.running(model):
        raise Conflict(f"{model} is drawing a picture; delete it once it is done.", param="model")
    await svc.pool.runtimes.remove(model)
    await asyncio.to_thread(RuntimeStore(svc.settings.store.home).remove, model)
    return True


@router.post("/copy", dependencies=Admin, openapi_extra=json_doc(CopyBody))
async def copy(request: Request, svc: ServicesDep) -> Response:
    body = await json_body(request, CopyBody)
    await asyncio.to_thread(svc.store.copy, body.source, body.destination)
    return Response(status_code=200)


@router.post("/pull", dependencies=Admin, response_model=None, openapi_extra=json_doc(PullBody))
async def pull(request: Request, svc: ServicesDep) -> Response:
    """A packaged name, `hf.co/owner/repo[:QUANT]`, `hf://owner/repo/file.gguf` or an http(s)
    URL (`iaforall.models.pull`), or `hf.co/owner/repo` holding an image model's ONNX export
    (`iaforall.models.image_pull`); never a path on the server's disk."""
    body = await json_body(request, PullBody)
    name = body.target
    runtime_model = find_runtime_model(name)
    if isinstance(runtime_model, BuiltinVoices):
        if find(svc.settings.voice.espeak) is None:
            raise ModelStoreError(
                f"{runtime_model.name} is missing on the server: install it there with "
                f"`{runtime_model.install}`."
            )
        return JSONResponse({"status": "success"})  # it comes with IAForAll: nothing to pull
    source = parse_source(name, local_files=False)  # refuses bad names before streaming
    if (
        runtime_model is None
        and isinstance(source, PackagedSource)
        and svc.store.registry.get(name) is None
    ):
        raise UnknownModel(name, list(svc.store.registry))
    allow_private = svc.settings.store.pull_allow_private
    events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    last: dict[str, Any] = {}

    def progress(description: str, completed: int, total: int) -> None:
        # Once per status, then at most one line per percent.
        step = max(1, total // 100)
        same = last.get("status") == description
        if same and completed != total and completed - last.get("completed", 0) < step:
            return
        last.update(status=description, completed=completed)
        event = {"status": description, "completed": completed, "total": total}
        loop.call_soon_threadsafe(events.put_nowait, event)

    image: list[bool] = []  # an image model was pulled (a runtime too)

    def work() -> None:
        if runtime_model is not None:
            RuntimeStore(svc.settings.store.home).pull(runtime_model, progress)
            return
        if isinstance(source, HubSource) and source.quant is None and source.filename is None:
            hub = svc.settings.other_programs
            siblings = hub_holds_image_model(source.repo, hub)
            if siblings is not None:
                pull_hub(svc.settings.store.home, source.repo, None, progress, hub, siblings)
                image.append(True)
                return
        pull_model(
            svc.store,
            name,
            allow_private=allow_private,
            local_files=False,
            progress=progress,
            hub=svc.settings.other_programs,
        )

    async def run() -> None:
        try:
            await asyncio.to_thread(work)
            if runtime_model is not None or image:  # answered from now on, without a restart
                found = await asyncio.to_thread(installed_runtimes, svc.settings)
                svc.pool.runtimes.add(found)
        finally:
            events.put_nowait(None)

    task = asyncio.ensure_future(run())
    if not body.stream:
        await task
        return JSONResponse({"status": "success"})
    return StreamingResponse(_pull_lines(task, events), media_type="application/x-ndjson")


async def _pull_lines(
    task: asyncio.Future[None], events: asyncio.Queue[dict[str, Any] | None]
) -> AsyncIterator[bytes]:
    yield ndjson({"status": "pulling manifest"})
    while (event := await events.get()) is not None:
        yield ndjson(event)
    try:
        await task
    except IAForAllError as exc:
        yield ndjson(ollama_body(exc))
        return
    yield ndjson({"status": "success"})
