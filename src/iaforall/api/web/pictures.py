"""Pictures drawn in the web app (`/image …`, through POST /v1/images/generations), kept in
their conversation: a message of role `picture` whose content is the prompt and whose one
image is the picture. Never given to the chat model (store/conversations.py `history_of`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services
from iaforall.api.openai.images import checked_prompt
from iaforall.api.openapi import json_doc
from iaforall.api.web.router import off_loop
from iaforall.api.web.schemas import MessageOut, PictureIn
from iaforall.core.types import ConversationId, Principal
from iaforall.services import Services
from iaforall.store.conversations import NewImage

router = APIRouter(prefix="/web/api", tags=["web app"])

ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]


@router.post(
    "/conversations/{conversation_id}/pictures",
    status_code=201,
    openapi_extra=json_doc(PictureIn),
)
async def keep_picture(
    conversation_id: ConversationId, request: Request, svc: ServicesDep, me: PrincipalDep
) -> Any:
    body = await json_body(request, PictureIn)
    prompt = checked_prompt(body.prompt, svc.settings.drawing)
    store = svc.conversations
    await off_loop(store.get, me.user, conversation_id)  # someone else's: 404, nothing read
    # Checked as an attached image is: decoded within the limits, a fake refused.
    data, media_type = await svc.images.media_type(body.image.url, "image.url")
    name = body.image.name or f"image.{media_type.removeprefix('image/')}"
    image = NewImage(media_type, name, data)
    async with svc.storage.reserve(me, len(data)):  # within the person's storage quota
        added = await off_loop(
            store.add_picture, me.user, conversation_id, prompt, body.model, image
        )
    return MessageOut.of(added).model_dump(mode="json")
