"""Images attached to the web app's messages: checked on arrival, served back to their owner,
and given to the model the way /v1/chat/completions gives them (OCR text for a text-only
model, the image itself for one with a vision projector)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from iaforall.api.deps import services, user_of
from iaforall.api.web.schemas import ImageIn
from iaforall.core.ids import new_id
from iaforall.core.types import ConversationId, UserId
from iaforall.services import Services
from iaforall.settings import ImageSettings
from iaforall.store.conversations import NewImage, Said, Turn
from iaforall.vision import ImageReader, data_url
from iaforall.vision.errors import ImageRefused

router = APIRouter(prefix="/web/api", tags=["web app"])

ServicesDep = Annotated[Services, Depends(services)]
UserDep = Annotated[UserId, Depends(user_of)]


def reader_of(request: Request, svc: Services) -> ImageReader:
    return svc.images


def check_import(settings: ImageSettings, messages: Sequence[Sequence[ImageIn]]) -> None:
    """An imported conversation's images are bounded in number, and those to fetch from the
    internet more tightly: checked over the whole document, before anything is read."""
    urls = [image.url for images in messages for image in images]
    remote = sum(url[:5].lower() != "data:" for url in urls)
    if remote > settings.import_max_fetches:
        raise ImageRefused(
            f"The conversation has {remote} images given as http(s) URLs; at most "
            f"{settings.import_max_fetches} may be fetched for one import "
            "(IAFORALL_IMPORT_MAX_FETCHES). Put the images in the file as data: URLs, as "
            "an export does.",
            param="messages",
            code="too_many_image_fetches",
        )
    if len(urls) > settings.import_max_images:
        raise ImageRefused(
            f"The conversation has {len(urls)} images; at most {settings.import_max_images} "
            "are allowed in one import (IAFORALL_IMPORT_MAX_IMAGES).",
            param="messages",
            code="too_many_images",
        )


async def checked(reader: ImageReader, images: Sequence[ImageIn], param: str) -> list[NewImage]:
    """The images of one message, decoded within the limits (a bomb or a fake is refused
    here, before anything is stored)."""
    most = reader.settings.image_max_count
    if len(images) > most:
        raise ImageRefused(
            f"The message has {len(images)} images; at most {most} are allowed in one message.",
            param=param,
            code="too_many_images",
        )
    result = []
    for i, image in enumerate(images):
        data, media_type = await reader.media_type(image.url, f"{param}.{i}.url")
        result.append(NewImage(media_type, image.name or f"image-{i + 1}", data))
    return result


def shown_images(history: Sequence[Said], most: int) -> set[str]:
    """The ids of the images the model is given: the conversation's last `most` (those of
    the newest messages). Older ones are left out with a note, never read."""
    ids = [i for said in history for i in said.images]
    return set(ids[-most:])


async def history_images(
    svc: Services, user: UserId, turn: Turn
) -> tuple[dict[str, NewImage], list[NewImage]]:
    """The bytes of the images the model is shown (the history's last `image_max_count`,
    so a long conversation costs no more memory than one request), and the images to store
    with its new message (an edit's kept images get new ids: the old rows go with the old
    message)."""
    known = {i.id: i for i in turn.images if isinstance(i, NewImage)}
    shown = shown_images(turn.history, svc.settings.images.image_max_count)
    kept = [i.id for i in turn.images if not isinstance(i, NewImage)]
    wanted = [i for i in dict.fromkeys([*kept, *shown]) if i not in known]
    found = {**await run_in_threadpool(svc.conversations.images, user, wanted), **known}
    attach = [
        i if isinstance(i, NewImage) else replace(found[i.id], id=new_id())
        for i in turn.images
        if i.id in found
    ]
    return {k: v for k, v in found.items() if k in shown}, attach


def with_parts(
    messages: Sequence[Said], images: Mapping[str, NewImage], most: int
) -> list[dict[str, object]]:
    """The history as chat messages: those with images get OpenAI content parts; an image
    left out (older than the last `most`) is a short note, so the prompt says so."""
    result: list[dict[str, object]] = []
    for said in messages:
        if not said.images:
            result.append({"role": said.role, "content": said.content})
            continue
        parts: list[dict[str, object]] = []
        if said.content:
            parts.append({"type": "text", "text": said.content})
        for image_id in said.images:
            if image_id in images:
                image = images[image_id]
                url = data_url(image.data, image.media_type)
                parts.append({"type": "image_url", "image_url": {"url": url}})
            else:
                parts.append({"type": "text", "text": left_out(most)})
        result.append({"role": said.role, "content": parts})
    return result


def left_out(most: int) -> str:
    return (
        f"[An earlier image is left out: the model is given the conversation's last {most} "
        "images only]"
    )


@router.get("/conversations/{conversation_id}/images/{image_id}")
async def image(
    conversation_id: ConversationId, image_id: str, svc: ServicesDep, user: UserDep
) -> Response:
    found = await run_in_threadpool(svc.conversations.image, user, conversation_id, image_id)
    return Response(
        found.data,
        media_type=found.media_type,
        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
