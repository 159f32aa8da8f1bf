"""Files sent as multipart/form-data, streamed to disk within limits: the body is refused as
soon as it passes its limit, and never held whole in memory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from iaforall.api.limits import upload_ceiling
from iaforall.core.errors import InvalidRequest, PayloadTooLarge

CHUNK = 1 << 20


@dataclass(frozen=True)
class Received:
    name: str  # as the client named it (no folders)
    path: Path  # a temporary file: the caller moves or removes it
    size: int
    sha256: str


async def limited(
    request: Request, limit: int, too_large: Callable[[], PayloadTooLarge]
) -> AsyncGenerator[bytes, None]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large()
    seen = 0
    async for piece in request.stream():
        seen += len(piece)
        if seen > limit:
            raise too_large()
        yield piece


async def receive_files(
    request: Request,
    *,
    max_bytes: int,
    max_files: int,
    too_large: Callable[[], PayloadTooLarge],
    into: Path | None = None,
    field: str = "file",
    what: str = "the files",
) -> tuple[dict[str, str], list[Received]]:
    """The form's text fields, and its files (`field`, repeatable) written to `into` (a
    temporary folder by default) with their size and SHA-256."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest(f"Send {what} as multipart/form-data, in a '{field}' field.")
    body = limited(request, upload_ceiling(max_bytes, max_files), too_large)
    parser = MultiPartParser(request.headers, body, max_files=max_files, max_fields=50)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"The form could not be read: {exc.message}") from None
    received: list[Received] = []
    try:
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        uploads = [u for u in form.getlist(field) if isinstance(u, UploadFile)]
        if not uploads:
            raise InvalidRequest(f"Missing required parameter '{field}'.", param=field)
        if into is not None:
            await asyncio.to_thread(into.mkdir, parents=True, exist_ok=True)
        for upload in uploads:
            fd, name = tempfile.mkstemp(prefix="upload-", dir=into)
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                received.append(Received(Path(upload.filename or "").name, Path(name), 0, ""))
                while piece := await upload.read(CHUNK):
                    size += len(piece)
                    if size > max_bytes:
                        raise too_large()
                    digest.update(piece)
                    out.write(piece)
            received[-1] = Received(received[-1].name, Path(name), size, digest.hexdigest())
    except BaseException:
        for item in received:
            item.path.unlink(missing_ok=True)
        raise
    finally:
        await form.close()
    return fields, received
