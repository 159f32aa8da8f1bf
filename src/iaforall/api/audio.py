"""/v1/audio: speech to text (transcriptions, translations) and text to speech (speech, voices),
in OpenAI's shapes."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from iaforall.answering import Pipeline
from iaforall.answering.jobs import Tally, arrival, drain
from iaforall.api.answering import PipelineDep
from iaforall.api.audio_arriving import Asked, arriving, transcribe_arriving
from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services
from iaforall.api.errors import sse_error
from iaforall.api.openapi import FILE, json_doc, multipart_doc
from iaforall.api.streaming import SSE_HEADERS, queue_comment, queue_headers
from iaforall.api.uploads import receive_files
from iaforall.core.errors import (
    IAForAllError,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
)
from iaforall.core.events import QueueUpdate
from iaforall.core.types import Principal
from iaforall.engines import tts, whisper
from iaforall.engines.audio_cost import heard, speech_estimate, spoken, transcription_estimate
from iaforall.engines.runtime import Runtime
from iaforall.engines.threaded import Put
from iaforall.engines.tts.encode import FORMATS as SPEECH_FORMATS
from iaforall.engines.tts.encode import Streamer, encode, media_type
from iaforall.engines.tts.runtime import SpeakerRuntime
from iaforall.engines.whisper import Run, Segment, Transcript, refuse_options
from iaforall.engines.whisper.decode import decode, probe
from iaforall.engines.whisper.runtime import WhisperRuntime
from iaforall.services import Services

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/audio", tags=["OpenAI-compatible: audio"])

ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


def _flag(fields: dict[str, str], name: str) -> bool:
    raw = fields.get(name, "").strip().lower()
    if raw in ("", "false", "0", "no", "off"):
        return False
    if raw in ("true", "1", "yes", "on"):
        return True
    raise InvalidRequest(f"'{name}' must be true or false.", param=name)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is larger than the {limit // 1_000_000} MB allowed (IAFORALL_MAX_AUDIO_MB)."
    )


async def _form(request: Request, limit: int) -> tuple[dict[str, str], Path]:
    """The form's fields, and its `file` streamed to a temporary file (the caller removes it)."""
    fields, files = await receive_files(
        request, max_bytes=limit, max_files=1, too_large=lambda: _too_large(limit), what="the audio"
    )
    return fields, files[0].path


def _number(fields: dict[str, str], name: str, default: float) -> float:
    raw = fields.get(name, "")
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be a number.", param=name) from None


async def _handle(
    request: Request, svc: Services, pipeline: Pipeline, me: Principal, task: str
) -> Response:
    voice = svc.settings.voice
    if arriving(request):
        return await _handle_arriving(request, svc, pipeline, me, task)
    fields, path = await _form(request, voice.max_audio_mb * 1_000_000)
    streamed = False  # then the stream removes the upload when it ends
    try:
        model_name = fields.get("model", "").strip()
        if not model_name:
            raise InvalidRequest("Missing required parameter 'model'.", param="model")
        spec = whisper.resolve(model_name, svc.settings.store.home)
        model = pipeline.runtime(spec.name, "speech_to_text")
        fmt = fields.get("response_format", "json") or "json"
        if fmt not in FORMATS:
            raise InvalidRequest(
                f"'response_format' must be one of {', '.join(FORMATS)}.", param="response_format"
            )
        stream = _flag(fields, "stream")
        if stream and fmt not in ("json", "text"):
            raise InvalidRequest(
                "With 'stream', the text comes as transcript.text.delta events: use "
                "'response_format' json or text (srt, vtt and verbose_json need the whole).",
                param="response_format",
            )
        temperature = _number(fields, "temperature", 0.0)
        if not 0 <= temperature <= 1:
            raise InvalidRequest("'temperature' must be between 0 and 1.", param="temperature")
        language = None if task == "translate" else (fields.get("language") or "").strip().lower()
        refuse_options(spec, task, language or None)
        tally = Tally()

        async def prepare() -> float:
            """The file checked from its header (a 400 if it is not audio) before it takes a
            place in line: its length is its cost. It is decoded in its turn, not before (a
            long recording is ~100 MB of samples: not one per waiting request)."""
            seconds = await asyncio.to_thread(probe, path, voice.max_audio_seconds)
            return transcription_estimate(seconds)

        def work(runtime: Runtime, put: Put[Any], stop: threading.Event) -> None:
            assert isinstance(runtime, WhisperRuntime)
            try:
                audio = decode(path, voice.max_audio_seconds)
            finally:
                _discard(path)
            run = runtime.begin(
                audio,
                task=task,
                language=language or None,
                prompt=fields.get("prompt"),
                temperature=temperature,
                threads=tally.threads,  # what the CPU budget gave it
            )
            tally.usage = heard(0, 0)
            put(run)
            tokens = 0
            for segment in run.segments(stop):
                tokens += len(segment.tokens)
                tally.usage = heard(min(segment.end, run.duration), tokens)  # a stop: so far
                put(segment)
            if not stop.is_set():
                tally.usage = heard(run.duration, tokens)  # the silences too: it heard them

        items = pipeline.job(me, model, prepare, work, tally)
        if stream:
            streamed = True
            return await _stream_transcript(_removing(path, items))
        admission, got = await drain(items)
    finally:
        if not streamed:
            _discard(path)
    run, found = got[0], got[1:]
    text = "".join(s.text for s in found).strip()
    result = Transcript(text, run.language, run.duration, found)
    return _render(result, fmt, task, queue_headers(admission))


async def _handle_arriving(
    request: Request, svc: Services, pipeline: Pipeline, me: Principal, task: str
) -> Response:
    """Audio sent as it is spoken (a WAV or raw PCM body, chunked), its options in the query
    string (`?model=whisper:tiny.en&language=en`): transcribed while it arrives."""
    voice = svc.settings.voice
    fields = dict(request.query_params)
    model_name = fields.get("model", "").strip()
    if not model_name:
        raise InvalidRequest(
            "Missing required parameter 'model' (in the query string, for audio sent as a body: "
            "?model=whisper:tiny.en).",
            param="model",
        )
    spec = whisper.resolve(model_name, svc.settings.store.home)
    model = pipeline.runtime(spec.name, "speech_to_text")
    fmt = fields.get("response_format", "json") or "json"
    if fmt not in FORMATS:
        raise InvalidRequest(
            f"'response_format' must be one of {', '.join(FORMATS)}.", param="response_format"
        )
    if _flag(fields, "stream"):
        raise InvalidRequest(
            "Audio sent as it is spoken is transcribed while it arrives and answered whole when "
            "it ends: leave out 'stream' (or send the audio as a form to stream the text).",
            param="stream",
        )
    temperature = _number(fields, "temperature", 0.0)
    if not 0 <= temperature <= 1:
        raise InvalidRequest("'temperature' must be between 0 and 1.", param="temperature")
    language = None if task == "translate" else (fields.get("language") or "").strip().lower()
    refuse_options(spec, task, language or None)
    asked = Asked(
        model=model,
        task=task,
        language=language or ("en" if not spec.multilingual else None),
        prompt=fields.get("prompt") or None,
        temperature=temperature,
        max_seconds=voice.max_audio_seconds,
        idle_seconds=voice.stream_idle_seconds,
    )
    result = await transcribe_arriving(request, pipeline, me, asked)
    return _render(result, fmt, task, {})


async def _removing(path: Path, items: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    """The job's items; the upload removed when they end (decoded by then, or never to be)."""
    try:
        async for item in items:
            yield item
    finally:
        await items.aclose()
        _discard(path)


async def _stream_transcript(items: AsyncGenerator[Any, None]) -> Response:
    """Server-sent events: queue comments while it waits in line (it starts at once then, so the
    client sees its place), a transcript.text.delta per segment as Whisper decodes it, with the
    progress (`iaforall`), then transcript.text.done; an error after the start is an error
    event in the chat streams' shape, then the end. Served at once, it waits for Whisper's
    start (the language found), so the errors before it keep their HTTP status."""
    admission = await arrival(items)
    first: Any = admission
    if admission.position == 0:
        try:
            first = await anext(items)
        except BaseException:
            await items.aclose()
            raise
    return StreamingResponse(
        _transcript_events(first, items),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **queue_headers(admission)},
    )


async def _transcript_events(first: Any, rest: AsyncGenerator[Any, None]) -> AsyncIterator[bytes]:
    said: list[str] = []
    run: Run | None = None
    try:
        item = first
        while item is not None:
            if isinstance(item, QueueUpdate):
                yield queue_comment(item)
            elif isinstance(item, Run):
                run = item
            else:
                assert isinstance(item, Segment) and run is not None
                delta = item.text if said else item.text.lstrip()
                said.append(delta)
                yield _event(
                    {
                        "type": "transcript.text.delta",
                        "delta": delta,
                        "iaforall": {
                            "progress": round(run.progress(item.end), 3),
                            "seconds": min(item.end, run.duration),
                            "duration": run.duration,
                        },
                    }
                )
            item = await anext(rest, None)
    except IAForAllError as exc:
        yield sse_error(exc)
        return
    except Exception as exc:
        log.exception("transcription failed mid-stream")
        yield sse_error(_failed(exc))
        return
    finally:
        await rest.aclose()
    assert run is not None
    yield _event(
        {
            "type": "transcript.text.done",
            "text": "".join(said).strip(),
            "iaforall": {"language": run.language, "duration": run.duration, "progress": 1.0},
        }
    )


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


class _Failed(IAForAllError):
    status = 500
    type = "server_error"
    code = "internal_error"


def _failed(exc: Exception) -> IAForAllError:
    return _Failed("The server hit an unexpected error; it has been logged.")


def _render(result: Transcript, fmt: str, task: str, headers: dict[str, str]) -> Response:
    if fmt == "json":
        return JSONResponse({"text": result.text}, headers=headers)
    if fmt == "text":
        return PlainTextResponse(result.text + "\n", headers=headers)
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
            },
            headers=headers,
        )
    vtt = fmt == "vtt"
    lines = ["WEBVTT", ""] if vtt else []
    for i, s in enumerate(result.segments, 1):
        if not vtt:
            lines.append(str(i))
        lines.append(f"{_stamp(s.start, vtt)} --> {_stamp(s.end, vtt)}")
        lines += [s.text.strip(), ""]
    media = "text/vtt" if vtt else "application/x-subrip"
    return PlainTextResponse("\n".join(lines), media_type=media, headers=headers)


def _stamp(seconds: float, vtt: bool) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{'.' if vtt else ','}{ms:03d}"


def _audio_form(*, language: bool) -> dict[str, Any]:
    """The form `_handle` reads, as OpenAI's audio endpoints take it."""
    fields: dict[str, dict[str, Any]] = {
        "file": FILE,
        "model": {"type": "string", "description": "A Whisper model, e.g. whisper-base."},
        "prompt": {"type": "string"},
        "response_format": {"type": "string", "enum": list(FORMATS), "default": "json"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1, "default": 0},
        "stream": {"type": "boolean", "default": False},
    }
    if language:
        fields["language"] = {"type": "string", "description": "ISO-639-1, e.g. fr."}
    return multipart_doc(fields, required=["file", "model"])


@router.post("/transcriptions", response_model=None, openapi_extra=_audio_form(language=True))
async def transcriptions(
    request: Request, svc: ServicesDep, pipeline: PipelineDep, me: PrincipalDep
) -> Response:
    return await _handle(request, svc, pipeline, me, "transcribe")


@router.post("/translations", response_model=None, openapi_extra=_audio_form(language=False))
async def translations(
    request: Request, svc: ServicesDep, pipeline: PipelineDep, me: PrincipalDep
) -> Response:
    return await _handle(request, svc, pipeline, me, "translate")


class SpeechBody(BaseModel):
    model: str
    input: str = Field(min_length=1, max_length=4096)
    voice: str
    response_format: str = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    instructions: str | None = None
    stream_format: Literal["audio", "sse"] = "audio"


@router.post("/speech", response_model=None, openapi_extra=json_doc(SpeechBody))
async def speech(
    request: Request, svc: ServicesDep, pipeline: PipelineDep, me: PrincipalDep
) -> Response:
    """The audio is sent as it is produced: the first sentence's as soon as it is spoken, then
    the rest a few sentences at a time (one piece of text: the whole file at once). It takes
    its place in line like any work; `stream_format: "sse"` shows that place as it moves."""
    body = await json_body(request, SpeechBody, limit=100_000)
    if body.model not in tts.MODELS:
        raise ModelNotFound(body.model)
    model = pipeline.runtime(body.model, "text_to_speech")
    fmt = body.response_format
    if fmt not in SPEECH_FORMATS:
        raise InvalidRequest(
            f"'response_format' must be one of {', '.join(SPEECH_FORMATS)}.",
            param="response_format",
        )
    voice = tts.resolve(body.voice, svc.settings.voice.espeak, svc.settings.store.home)
    pieces = tts.split(body.input)
    whole = len(pieces) == 1 and body.stream_format == "audio"
    tally = Tally()

    async def prepare() -> float:
        return speech_estimate(len(body.input), body.speed)

    def work(runtime: Runtime, put: Put[Any], stop: threading.Event) -> None:
        assert isinstance(runtime, SpeakerRuntime)
        seconds = 0.0
        streamer: Streamer | None = None
        said: list[bytes] = []
        for pcm, rate in runtime.speaker.stream(voice, pieces, body.speed, stop):
            seconds += len(pcm) / 2 / rate  # 16-bit mono
            tally.usage = spoken(len(body.input), seconds)
            if whole:
                said.append(pcm)
                continue
            streamer = streamer or Streamer(fmt, rate)
            if data := streamer.add(pcm):
                put(data)
        if whole:
            put(encode(b"".join(said), rate, fmt))
        elif streamer is not None and (tail := streamer.close()):
            put(tail)

    items = pipeline.job(me, model, prepare, work, tally)
    if whole:
        admission, got = await drain(items)
        return Response(got[0], media_type=media_type(fmt), headers=queue_headers(admission))
    admission = await arrival(items)
    if body.stream_format == "sse":
        first: Any = admission
        if admission.position == 0:
            first, items = await _first_audio(items)
        return StreamingResponse(
            _speech_events(first, items, len(body.input)),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **queue_headers(admission)},
        )
    # Audio bytes have no room for a queue comment: the place on arrival is in the headers,
    # and the response starts with the first audio (errors before it keep their status).
    first_audio, items = await _first_audio(items)
    return StreamingResponse(
        _audio(first_audio, items),
        media_type=media_type(fmt),
        headers={"Cache-Control": "no-cache", **queue_headers(admission)},
    )


async def _first_audio(items: AsyncGenerator[Any, None]) -> tuple[bytes, AsyncGenerator[Any, None]]:
    """The first piece of audio (the line's updates before it skipped)."""
    try:
        while isinstance(item := await anext(items), QueueUpdate):
            pass
    except BaseException:
        await items.aclose()
        raise
    assert isinstance(item, bytes)
    return item, items


async def _audio(first: bytes, rest: AsyncGenerator[Any, None]) -> AsyncIterator[bytes]:
    """The audio as it comes; a failure after the start ends the connection unfinished (the
    client sees an incomplete response, not a shorter file that looks whole)."""
    try:
        yield first
        async for data in rest:
            if isinstance(data, bytes):
                yield data
    except Exception:
        log.exception("speech synthesis failed mid-stream")
        raise
    finally:
        await rest.aclose()


async def _speech_events(
    first: Any, rest: AsyncGenerator[Any, None], characters: int
) -> AsyncIterator[bytes]:
    """OpenAI's `stream_format: "sse"`: queue comments while it waits in line, speech.audio.delta
    events (base64 audio), then speech.audio.done; an error after the start is an error event."""
    sent = 0
    item: Any = first
    try:
        while item is not None:
            if isinstance(item, QueueUpdate):
                yield queue_comment(item)
            else:
                sent += len(item)
                yield _event(
                    {"type": "speech.audio.delta", "audio": base64.b64encode(item).decode()}
                )
            item = await anext(rest, None)
    except IAForAllError as exc:
        yield sse_error(exc)
        return
    except Exception as exc:
        log.exception("speech synthesis failed mid-stream")
        yield sse_error(_failed(exc))
        return
    finally:
        await rest.aclose()
    # No tokens are counted here (no model bills by token): usage is zero, honestly. (The
    # person's quotas count the job in engines/audio_cost.py's units.)
    usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    figures = {"characters": characters, "bytes": sent}
    yield _event({"type": "speech.audio.done", "usage": usage, "iaforall": figures})


@router.get("/voices")
async def voices(svc: ServicesDep) -> dict[str, Any]:
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
            for v in tts.voices(svc.settings.voice.espeak, svc.settings.store.home)
        ],
    }
