"""`image_url` parts -> what the model is given, in one place, before the dispatcher.

A text-only model gets, for each image, a text part labelled with how it was made (OCR) and
saying that the model cannot see the image, so the prompt shown by "what the model sees" never
pretends otherwise. A vision-language model (one with an mmproj projector) gets the checked
image itself, as a data URL, for llama.cpp's multimodal path.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from PIL import Image

from iaforall.core.types import ChatRequest, UserId
from iaforall.settings import ImageSettings
from iaforall.vision.decode import data_url_bytes, decode
from iaforall.vision.errors import ImageRefused
from iaforall.vision.fetch import fetch
from iaforall.vision.ocr import NAME as OCR_NAME
from iaforall.vision.ocr import RapidOcr

OCR_CACHE = 64  # images whose text is remembered: a conversation sends its images every turn


class ReadsText(Protocol):
    async def read(
        self, image: Image.Image, *, user: UserId | None = None, weight: float = 1.0
    ) -> list[str]:
        """The lines of text found, top to bottom; empty when there is none. With a `user`,
        the work takes its turn in the scheduler on their behalf."""


@dataclass
class ImageReader:
    settings: ImageSettings
    ocr: ReadsText = field(default_factory=RapidOcr)  # the app's: the registry's runtime
    # sha256 of the image's bytes -> the lines OCR read, most recently used last.
    _read: OrderedDict[str, list[str]] = field(default_factory=OrderedDict)

    @classmethod
    def of(cls, state: Any, settings: ImageSettings) -> ImageReader:
        """The app's reader, built with its services (its OCR is the pool's runtime)."""
        reader: ImageReader = state.services.images
        return reader

    async def image_bytes(self, url: str, param: str) -> bytes:
        limits = self.settings
        if url[:5].lower() == "data:":
            return data_url_bytes(url, max_bytes=limits.image_max_bytes, param=param)
        return await fetch(
            url,
            max_bytes=limits.image_max_bytes,
            seconds=limits.image_fetch_timeout,
            param=param,
        )

    async def load(self, url: str, param: str) -> tuple[bytes, Image.Image]:
        data = await self.image_bytes(url, param)
        image = await asyncio.to_thread(
            decode, data, max_pixels=self.settings.image_max_pixels, param=param
        )
        return data, image

    async def media_type(self, url: str, param: str) -> tuple[bytes, str]:
        """The checked bytes of an image (decoded within the limits) and their media type."""
        data, _ = await self.load(url, param)
        with Image.open(io.BytesIO(data)) as image:
            return data, Image.MIME.get(image.format or "", "image/png")

    async def lines(
        self, data: bytes, image: Image.Image, user: UserId | None = None, weight: float = 1.0
    ) -> list[str]:
        key = hashlib.sha256(data).hexdigest()
        if key in self._read:
            self._read.move_to_end(key)
            return self._read[key]
        lines = await self.ocr.read(image, user=user, weight=weight)
        self._read[key] = lines
        while len(self._read) > OCR_CACHE:
            self._read.popitem(last=False)
        return lines

    async def as_text(
        self, number: int, url: str, param: str, user: UserId | None = None, weight: float = 1.0
    ) -> str:
        data, image = await self.load(url, param)
        lines = await self.lines(data, image, user, weight)
        if not lines:
            return (
                f"[Image {number}: OCR ({OCR_NAME}) found no text in it; "
                "the model cannot see the image itself]"
            )
        return (
            f"[Image {number}: text read by OCR ({OCR_NAME}); "
            "the model cannot see the image itself]\n" + "\n".join(lines)
        )

    async def as_data_url(self, url: str, param: str) -> str:
        data, mime = await self.media_type(url, param)  # refused here, not in the engine
        if url[:5].lower() == "data:":
            return url
        return data_url(data, mime)


def data_url(data: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def has_images(chat: ChatRequest) -> bool:
    return any(
        part.get("type") == "image_url"
        for m in chat.messages
        if isinstance(m.get("content"), list)
        for part in m["content"]
    )


async def read_images(
    chat: ChatRequest, reader: ImageReader, *, model_sees_images: bool = False, count: bool = True
) -> ChatRequest:
    """The request with its image parts turned into labelled OCR text (or, for a model that
    sees images, checked data URLs); a request without images is returned as is. `count`:
    refuse more images than one request may carry (a stored conversation, whose images were
    checked one message at a time, does not count them)."""
    if not any(isinstance(m.get("content"), list) for m in chat.messages):
        return chat
    images = sum(
        part.get("type") == "image_url"
        for m in chat.messages
        if isinstance(m.get("content"), list)
        for part in m["content"]
    )
    if count and images > reader.settings.image_max_count:
        raise ImageRefused(
            f"The request has {images} images; at most {reader.settings.image_max_count} are "
            "allowed in one request.",
            param="messages",
            code="too_many_images",
        )
    number = 0
    messages = []
    for index, message in enumerate(chat.messages):
        content = message.get("content")
        if not isinstance(content, list):
            messages.append(message)
            continue
        parts: list[dict[str, Any]] = []
        for part_index, part in enumerate(content):
            if part.get("type") != "image_url":
                parts.append(part)
                continue
            number += 1
            param = f"messages.{index}.content.{part_index}.image_url.url"
            url = str(part["image_url"]["url"])
            if model_sees_images:
                image_url = {**part["image_url"], "url": await reader.as_data_url(url, param)}
                parts.append({"type": "image_url", "image_url": image_url})
            else:
                # Read on the asker's behalf: OCR takes its turn in the scheduler's line.
                text = await reader.as_text(number, url, param, chat.user, chat.weight)
                parts.append({"type": "text", "text": text})
        if model_sees_images:
            messages.append({**message, "content": parts})
        else:
            messages.append({**message, "content": "\n\n".join(p["text"] for p in parts)})
    return replace(chat, messages=tuple(messages))


__all__ = ["ImageReader", "ImageRefused", "data_url", "has_images", "read_images"]
