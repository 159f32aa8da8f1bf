"""POST /v1/images/generations in OpenAI's shape: pictures from an image model of the store, lined
up like any answer (the person's quotas, the fair queue and its position, the published rules on
the prompt, their decisions shown), drawn by the model's worker process.

Our extensions: `seed` (the same seed, prompt, size and steps give the same picture), `steps`,
and with `stream: true` an `iaforall.image_progress` event after each step, beside OpenAI's
`image_generation.partial_image` (a cheap preview of the latent, `partial_images` of them) and
`image_generation.completed` events."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from iaforall.answering import Pipeline
from iaforall.answering.jobs import Tally, arrival, drain
from iaforall.api.answering import PipelineDep
from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services
from iaforall.api.errors import sse_error
from iaforall.api.openapi import json_doc
from iaforall.api.streaming import SSE_HEADERS, cancel_on_disconnect, queue_comment, queue_headers
from iaforall.core.errors import IAForAllError, InvalidRequest, ModelNotFound, NotFound
from iaforall.core.events import QueueUpdate
from iaforall.core.types import ModelId, Principal
from iaforall.engines.images.cost import drawing_estimate, drawn, picture_units
from iaforall.engines.images.folder import LATENT_SCALE
from iaforall.engines.images.protocol import MEDIA
from iaforall.engines.images.runtime import Ask, Heard, ImageRuntime, Preview, Step
from iaforall.engines.runtime import Runtime
from iaforall.engines.threaded import Put
from iaforall.models import catalog
from iaforall.policy.gate import decisions_field
from iaforall.services import Services
from iaforall.settings import DrawingSettings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/images", tags=["OpenAI-compatible: images"])

ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
BODY_LIMIT = 64_000  # a prompt and a few options
MOST_PREVIEWS = 3  # OpenAI's partial_images: 0 to 3
SEEDS = 2**32


class ImageBody(BaseModel):
    """OpenAI's fields (the ones for other models, such as `style`, `quality`, `background`
    or `moderation`, are accepted and have no effect here) and ours (`seed`, `steps`)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str
    model: str | None = None
    n: int | None = Field(None, ge=1)
    size: str | None = None
    response_format: Literal["b64_json", "url"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: int | None = Field(None, ge=0, le=100)
    stream: bool | None = False
    partial_images: int | None = Field(None, ge=0, le=MOST_PREVIEWS)
    seed: int | None = Field(None, ge=0, lt=SEEDS)
    steps: int | None = Field(None, ge=1)


class NoImageModel(IAForAllError):
    status = 404
    code = "model_not_found"
    type = "invalid_request_error"


@dataclass(frozen=True, slots=True)
class Progress:
    index: int  # which picture of the request
    step: int
    steps: int


@dataclass(frozen=True, slots=True)
class Partial:
    index: int
    data: bytes
    partial_index: int


@dataclass(frozen=True, slots=True)
class Picture:
    index: int
    data: bytes
    seed: int


@dataclass(frozen=True, slots=True)
class Order:
    """A request checked: what to draw, how, and what it costs."""

    model: ModelId
    prompt: str
    width: int
    height: int
    n: int
    steps: int
    seeds: tuple[int, ...]
    format: str
    quality: int
    previews: int
    units: int  # per picture

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


def _model(svc: Services, pipeline: Pipeline, name: str | None) -> ModelId:
    """The image model asked for (the first installed when none is named)."""
    runtimes = svc.pool.runtimes
    images = [s.model for s in runtimes.specs() if s.kind == "image"]
    if not name:
        if not images:
            raise NoImageModel(
                "No image model is installed here. Add one with `iaforall pull FOLDER --name "
                "NAME` (the ONNX export of a text-to-image model: docs/images.md), then "
                "restart the server.",
                param="model",
            )
        return images[0]
    found = catalog.find_model(svc.store, runtimes, name)
    if found is not None and found.kind != "image":
        kind = found.kind.replace("_", " ")
        choose = f" Image models here: {', '.join(images)}." if images else ""
        raise InvalidRequest(
            f"'{name}' is a {kind} model: it does not draw pictures.{choose}",
            param="model",
            code="model_not_image",
        )
    if found is None:
        raise ModelNotFound(name)
    return pipeline.runtime(name, "image")


def _size(svc: Services, size: str | None) -> tuple[int, int]:
    allowed = svc.settings.drawing.sizes()
    if size is None or size == "auto":
        return allowed[0]
    width, _, height = size.strip().lower().partition("x")
    if width.isdigit() and height.isdigit() and (int(width), int(height)) in allowed:
        return int(width), int(height)
    sizes = ", ".join(f"{w}x{h}" for w, h in allowed)
    raise InvalidRequest(
        f"The size '{size}' is not offered here; sizes: {sizes} (or auto).",
        param="size",
        code="unsupported_size",
    )


def checked_prompt(text: str, drawing: DrawingSettings) -> str:
    """A drawing's prompt, stripped; refused when empty or past the longest one read."""
    prompt = text.strip()
    if not prompt:
        raise InvalidRequest("The prompt is empty: say what to draw.", param="prompt")
    if len(prompt) > drawing.draw_max_prompt_chars:
        raise InvalidRequest(
            f"The prompt is {len(prompt):,} characters long; at most "
            f"{drawing.draw_max_prompt_chars:,} are read (IAFORALL_DRAW_MAX_PROMPT_CHARS).",
            param="prompt",
            code="prompt_too_long",
        )
    return prompt


def _order(svc: Services, pipeline: Pipeline, body: ImageBody) -> Order:
    drawing = svc.settings.drawing
    prompt = checked_prompt(body.prompt, drawing)
    n = body.n or 1
    if n > drawing.draw_max_n:
        raise InvalidRequest(
            f"At most {drawing.draw_max_n} images are drawn per request (IAFORALL_DRAW_MAX_N).",
            param="n",
        )
    steps = body.steps or drawing.draw_steps
    if steps > drawing.draw_max_steps:
        raise InvalidRequest(
            f"At most {drawing.draw_max_steps} steps per image (IAFORALL_DRAW_MAX_STEPS).",
            param="steps",
        )
    model = _model(svc, pipeline, body.model)
    width, height = _size(svc, body.size)
    if width % LATENT_SCALE or height % LATENT_SCALE:
        raise InvalidRequest("Sizes are multiples of 8 pixels.", param="size")
    first = body.seed if body.seed is not None else secrets.randbelow(SEEDS)
    fmt = body.output_format or "png"
    previews = (body.partial_images or 0) if body.stream else 0
    if body.partial_images and not body.stream:
        raise InvalidRequest("'partial_images' goes with 'stream': true.", param="partial_images")
    if body.stream and body.response_format == "url":
        raise InvalidRequest(
            "A stream carries the pictures themselves (b64_json): leave out 'response_format'.",
            param="response_format",
        )
    return Order(
        model=model,
        prompt=prompt,
        width=width,
        height=height,
        n=n,
        steps=steps,
        seeds=tuple((first + i) % SEEDS for i in range(n)),
        format=fmt,
        quality=body.output_compression if body.output_compression is not None else 90,
        previews=min(previews, max(0, steps - 1)),
        units=picture_units(drawing.draw_units, width, height),
    )


def _items(pipeline: Pipeline, me: Principal, order: Order) -> AsyncGenerator[Any, None]:
    """The job in line: QueueUpdates, then Progress, Partial and Picture items."""
    tally = Tally()

    async def prepare() -> float:
        return drawing_estimate(len(order.prompt), order.n, order.units)

    def work(runtime: Runtime, put: Put[Any], stop: threading.Event) -> None:
        assert isinstance(runtime, ImageRuntime)
        tally.usage = drawn(len(order.prompt), 0, order.units)
        for index, seed in enumerate(order.seeds):
            if stop.is_set():
                return
            ask = Ask(
                order.prompt,
                order.width,
                order.height,
                order.steps,
                seed,
                order.format,
                order.quality,
                order.previews,
            )

            def heard(said: Heard, index: int = index) -> None:
                if isinstance(said, Step):
                    put(Progress(index, said.step, said.steps))
                elif isinstance(said, Preview):
                    put(Partial(index, said.data, said.index))

            data = runtime.draw(ask, heard, stop)
            if not data:  # cancelled: its client left
                return
            tally.usage = drawn(len(order.prompt), index + 1, order.units)
            put(Picture(index, data, seed))

    return pipeline.job(me, order.model, prepare, work, tally)


def _usage(order: Order, pictures: int) -> dict[str, Any]:
    used = drawn(len(order.prompt), pictures, order.units)
    return {
        "input_tokens": used.prompt_tokens,
        "input_tokens_details": {"text_tokens": used.prompt_tokens, "image_tokens": 0},
        "output_tokens": used.completion_tokens,
        "total_tokens": used.total_tokens,
    }


@router.post("/generations", response_model=None, openapi_extra=json_doc(ImageBody))
async def generations(
    request: Request, svc: ServicesDep, pipeline: PipelineDep, me: PrincipalDep
) -> Response:
    body = await json_body(request, ImageBody, limit=BODY_LIMIT)
    order = _order(svc, pipeline, body)
    decisions = await pipeline.check_prompt(me, order.model, order.prompt)
    extension: dict[str, Any] = {
        "model": order.model,
        "seeds": list(order.seeds),
        "steps": order.steps,
        **decisions_field(decisions),
    }
    items = _items(pipeline, me, order)
    if body.stream:
        admission = await arrival(items)
        return StreamingResponse(
            _events(order, admission, items, extension),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **queue_headers(admission)},
        )
    admission, got = await cancel_on_disconnect(request, drain(items))
    pictures = sorted((p for p in got if isinstance(p, Picture)), key=lambda p: p.index)
    data: list[dict[str, Any]] = []
    for picture in pictures:
        if body.response_format == "url":
            key = svc.pictures.keep(me.user, picture.data, MEDIA[order.format])
            data.append({"url": f"{str(request.base_url).rstrip('/')}/v1/images/files/{key}"})
        else:
            data.append({"b64_json": base64.b64encode(picture.data).decode()})
    return JSONResponse(
        {
            "created": int(time.time()),
            "data": data,
            "output_format": order.format,
            "size": order.size,
            "quality": "auto",
            "background": "opaque",
            "usage": _usage(order, len(pictures)),
            "iaforall": extension,
        },
        headers=queue_headers(admission),
    )


async def _events(
    order: Order, first: QueueUpdate, rest: AsyncGenerator[Any, None], extension: dict[str, Any]
) -> AsyncIterator[bytes]:
    """Queue comments while it waits, then per picture its progress, previews and the picture
    itself; an error after the start is an error event in OpenAI's error shape."""
    common = {
        "background": "opaque",
        "output_format": order.format,
        "quality": "auto",
        "size": order.size,
    }
    done = 0
    item: Any = first
    try:
        while item is not None:
            if isinstance(item, QueueUpdate):
                yield queue_comment(item)
            elif isinstance(item, Progress):
                yield _event(
                    {
                        "type": "iaforall.image_progress",
                        "created_at": int(time.time()),
                        "image_index": item.index,
                        "step": item.step,
                        "steps": item.steps,
                    }
                )
            elif isinstance(item, Partial):
                yield _event(
                    {
                        "type": "image_generation.partial_image",
                        "b64_json": base64.b64encode(item.data).decode(),
                        "created_at": int(time.time()),
                        "partial_image_index": item.partial_index,
                        **common,
                        "iaforall": {"image_index": item.index},
                    }
                )
            elif isinstance(item, Picture):
                done += 1
                yield _event(
                    {
                        "type": "image_generation.completed",
                        "b64_json": base64.b64encode(item.data).decode(),
                        "created_at": int(time.time()),
                        **common,
                        "usage": _usage(order, done),
                        "iaforall": {**extension, "image_index": item.index, "seed": item.seed},
                    }
                )
            item = await anext(rest, None)
    except IAForAllError as exc:
        yield sse_error(exc)
    except Exception:
        log.exception("image generation failed mid-stream")
        yield sse_error(_Failed("The server hit an unexpected error; it has been logged."))
    finally:
        await rest.aclose()  # a client that left stops the drawing between two steps


class _Failed(IAForAllError):
    status = 500
    type = "server_error"
    code = "internal_error"


def _event(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\n".encode() + b"data: " + json.dumps(data).encode() + b"\n\n"


@router.get("/files/{image_id}", response_model=None)
async def picture_file(image_id: str, svc: ServicesDep, me: PrincipalDep) -> Response:
    """A drawn picture's link (`response_format: url`): for the one who asked for it only."""
    found = svc.pictures.get(me.user, image_id)
    if found is None:
        raise NotFound("No such picture (links last until the server restarts).")
    return Response(found.data, media_type=found.media_type, headers={"Cache-Control": "private"})
