"""Images in a chat request, read the same way whichever API they came through."""

from __future__ import annotations

from fastapi import Request

from iaforall.core.types import ChatRequest
from iaforall.services import Services
from iaforall.vision import ImageReader, has_images, read_images


async def with_images(request: Request, svc: Services, chat: ChatRequest) -> ChatRequest:
    """Image parts read into labelled text (OCR) before anything else sees the request, or
    kept as checked images for a model that sees them (one with a vision projector)."""
    if not has_images(chat):
        return chat
    _, capabilities = svc.dispatcher.check(chat)
    reader = ImageReader.of(request.app.state, svc.settings.images)
    return await read_images(chat, reader, model_sees_images=capabilities.vision)
