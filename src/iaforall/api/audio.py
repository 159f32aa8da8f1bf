"""/v1/audio: speech to text (transcriptions, translations) and text to speech (speech, voices),
in OpenAI's shapes."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services
from iaforall.core.errors import InvalidRequest, ModelNotFound, PayloadTooLarge, ServerBusy
from iaforall.core.types import ModelId, Principal
from iaforall.engines import tts
from iaforall.engines.tts.encode import FORMATS as SPEECH_FORMATS
from iaforall.engines.tts.encode import encode, media_type
from iaforall.engines.whisper import Transcript, Whisper, resolve
from iaforall.engines.whisper.decode import decode
from iaforall.people.quotas import role_weight
from iaforall.services import Services

router = APIRouter(prefix="/v1/audio", tags=["OpenAI-compatible: audio"])

ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


class Turn:
    """One transcription at a time; a few may wait, the rest get a 429 at once."""

    def __init__(self, queue: int) -> None:
        self.lock = asyncio.Lock()
        self.queue = queue
        self.waiting = 0

    async def run(self, work: Any, *args: Any) -> Any:
        if self.lock.locked() and self.waiting >= self.queue:
            raise ServerBusy(
                "The server is transcribing other audio; try again shortly.", retry_after=5
            )
        self.waiting += 1
        try:
            await self.lock.acquire()
        finally:
            self.waiting -= 1
        try:
            return await asyncio.to_thread(work, *args)
        finally:
            self.lock.release()


def _voice(request: Request, svc: Services) -> tuple[Whisper, Turn]:
    state = request.app.state
    if not hasattr(state, "whisper"):
        threads = svc.settings.voice.whisper_threads or svc.settings.engine.threads
        state.whisper = Whisper(svc.settings.store.home, threads)
        state.whisper_turn = Turn(svc.settings.voice.audio_queue)
    return state.whisper, state.whisper_turn


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    seen = 0
    async for piece in request.stream():
        seen += len(piece)
        if seen > limit:
            raise _too_large(limit)
        yield piece


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is larger than the {limit // 1_000_000} MB allowed (IAFORALL_MAX_AUDIO_MB)."
    )


async def _form(request: Request, limit: int) -> tuple[dict[str, str], Path]:
    """The form's fields, and its `file` streamed to a temporary file (the caller removes it)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("Send the audio as multipart/form-data with a 'file' field.")
    parser = MultiPartParser(request.headers, _limited(request, limit), max_files=1, max_fields=20)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"The form could not be read: {exc.message}") from None
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        await form.close()
        raise InvalidRequest("Missing required parameter 'file'.", param="file")
    fd, name = tempfile.mkstemp(prefix="iaforall-audio-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await upload.read(1 << 20):
                out.write(chunk)
    finally:
        await form.close()
    return fields, Path(name)


def _number(fields: dict[str, str], name: str, default: float) -> float:
    raw = fields.get(name, "")
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be a number.", param=name) from None


async def _handle(request: Request, svc: Services, me: Principal, task: str) -> Response:
    voice = svc.settings.voice
    fields, path = await _form(request, voice.max_audio_mb * 1_000_000)
    try:
        model_name = fields.get("model", "").strip()
        if not model_name:
            raise InvalidRequest("Missing required parameter 'model'.", param="model")
        model = resolve(model_name)
        fmt = fields.get("response_format", "json") or "json"
        if fmt not in FORMATS:
            raise InvalidRequest(
                f"'response_format' must be one of {', '.join(FORMATS)}.", param="response_format"
            )
        temperature = _number(fields, "temperature", 0.0)
        if not 0 <= temperature <= 1:
            raise InvalidRequest("'temperature' must be between 0 and 1.", param="temperature")
        language = (fields.get("language") or "").strip().lower() or None
        whisper, turn = _voice(request, svc)

        def work() -> Transcript:
            audio = decode(path, voice.max_audio_seconds)
            return whisper.transcribe(
                model,
                audio,
                task=task,
                language=None if task == "translate" else language,
                prompt=fields.get("prompt"),
                temperature=temperature,
            )

        # Its turn among all the work (chat included, IAFORALL_MAX_ACTIVE_MODELS), then one
        # transcription at a time.
        weight = role_weight(svc.settings.people, me.role)
        async with svc.scheduler.slot(ModelId(model.name), me.user, weight=weight):
            result: Transcript = await turn.run(work)
    finally:
        path.unlink(missing_ok=True)
    return _render(result, fmt, task)


def _render(result: Transcript, fmt: str, task: str) -> Response:
    if fmt == "json":
        return JSONResponse({"text": result.text})
    if fmt == "text":
        return PlainTextResponse(result.text + "\n")
    if fmt == "verbose_json":
        return JSONResponse(
            {
                "task": task,
                "language": "english" if task == "translate" else result.language,
                "duration": result.duration,
                "text": result.text,
                "segments": [
                    {
                        "id": s.id,
                        "seek": 0,
                        "start": s.start,
                        "end": s.end,
                        "text": s.text,
                        "tokens": s.tokens,
                        "temperature": s.temperature,
                        "avg_logprob": s.avg_logprob,
                        "compression_ratio": s.compression_ratio,
                        "no_speech_prob": s.no_speech_prob,
                    }
                    for s in result.segments
                ],
            }
        )
    vtt = fmt == "vtt"
    lines = ["WEBVTT", ""] if vtt else []
    for i, s in enumerate(result.segments, 1):
        if not vtt:
            lines.append(str(i))
        lines.append(f"{_stamp(s.start, vtt)} --> {_stamp(s.end, vtt)}")
        lines += [s.text.strip(), ""]
    media = "text/vtt" if vtt else "application/x-subrip"
    return PlainTextResponse("\n".join(lines), media_type=media)


def _stamp(seconds: float, vtt: bool) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{'.' if vtt else ','}{ms:03d}"


@router.post("/transcriptions", response_model=None)
async def transcriptions(request: Request, svc: ServicesDep, me: PrincipalDep) -> Response:
    return await _handle(request, svc, me, "transcribe")


@router.post("/translations", response_model=None)
async def translations(request: Request, svc: ServicesDep, me: PrincipalDep) -> Response:
    return await _handle(request, svc, me, "translate")


class SpeechBody(BaseModel):
    model: str
    input: str = Field(min_length=1, max_length=4096)
    voice: str
    response_format: str = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    instructions: str | None = None


def _speaker(request: Request) -> Turn:
    state = request.app.state
    if not hasattr(state, "speech_turn"):
        state.speech_turn = Turn(4)
    turn: Turn = state.speech_turn
    return turn


@router.post("/speech", response_model=None)
async def speech(request: Request) -> Response:
    body = await json_body(request, SpeechBody, limit=100_000)
    if body.model not in tts.MODELS:
        raise ModelNotFound(body.model)
    if body.response_format not in SPEECH_FORMATS:
        raise InvalidRequest(
            f"'response_format' must be one of {', '.join(SPEECH_FORMATS)}.",
            param="response_format",
        )
    voice = tts.resolve(body.voice)

    def work() -> bytes:
        pcm, rate = tts.synthesize(voice, body.input, body.speed)
        return encode(pcm, rate, body.response_format)

    audio: bytes = await _speaker(request).run(work)
    return Response(audio, media_type=media_type(body.response_format))


@router.get("/voices")
async def voices() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": v.id,
                "object": "voice",
                "language": v.language,
                "engine": v.engine,
                "description": v.description,
            }
            for v in tts.voices()
        ],
    }
