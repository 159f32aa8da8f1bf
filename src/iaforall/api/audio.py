"""/v1/audio: speech to text (transcriptions, translations) and text to speech (speech, voices),
in OpenAI's shapes."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from iaforall.answering.start import first_and_rest
from iaforall.api.auth import authenticate
from iaforall.api.deps import json_body, services
from iaforall.api.errors import sse_error
from iaforall.api.openapi import FILE, json_doc, multipart_doc
from iaforall.api.uploads import receive_files
from iaforall.core.errors import (
    IAForAllError,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    ServerBusy,
)
from iaforall.core.types import ModelId, Principal
from iaforall.engines import tts
from iaforall.engines.tts.encode import FORMATS as SPEECH_FORMATS
from iaforall.engines.tts.encode import Streamer, encode, media_type
from iaforall.engines.tts.espeak import Choice
from iaforall.engines.whisper import Run, Segment, Transcript, Whisper, resolve
from iaforall.engines.whisper.decode import decode
from iaforall.people.quotas import role_weight
from iaforall.services import Services

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/audio", tags=["OpenAI-compatible: audio"])

ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class Turn:
    """One piece of work at a time (a transcription; a synthesis); a few may wait, the rest get
    a 429 at once."""

    def __init__(self, queue: int, busy: str = "transcribing other audio") -> None:
        self.lock = asyncio.Lock()
        self.queue = queue
        self.waiting = 0
        self.busy = busy

    async def run(self, work: Any, *args: Any) -> Any:
        if self.lock.locked() and self.waiting >= self.queue:
            raise ServerBusy(f"The server is {self.busy}; try again shortly.", retry_after=5)
        self.waiting += 1
        try:
            await self.lock.acquire()
        finally:
            self.waiting -= 1
        try:
            return await asyncio.to_thread(work, *args)
        finally:
            self.lock.release()


_END = object()
_running: set[asyncio.Task[None]] = set()  # producers outlive the request that started them


class Feed:
    """What a worker thread produces, read by a streamed response as it comes. The work keeps
    its turn until the thread ends; a client that leaves sets `stop`, which the thread checks
    between pieces. Errors raised before the first item reach the caller (a real HTTP status)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.items: asyncio.Queue[Any] = asyncio.Queue()
        self.stop = threading.Event()

    def put(self, item: Any) -> None:
        """From the worker thread."""
        self.loop.call_soon_threadsafe(self.items.put_nowait, item)

    async def start(self, work: Awaitable[None]) -> tuple[Any, AsyncGenerator[Any, None]]:
        """The first item (or the error before it), and the rest as they come."""

        async def produce() -> None:
            try:
                await work
            except Exception as exc:
                self.items.put_nowait(exc)
            else:
                self.items.put_nowait(_END)

        task = asyncio.create_task(produce())
        _running.add(task)
        task.add_done_callback(_running.discard)
        first, rest = await first_and_rest(self._items())
        if first is None:
            raise RuntimeError("the work ended without producing anything")
        return first, rest

    async def _items(self) -> AsyncGenerator[Any, None]:
        try:
            while (item := await self.items.get()) is not _END:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.stop.set()


def _flag(fields: dict[str, str], name: str) -> bool:
    raw = fields.get(name, "").strip().lower()
    if raw in ("", "false", "0", "no", "off"):
        return False
    if raw in ("true", "1", "yes", "on"):
        return True
    raise InvalidRequest(f"'{name}' must be true or false.", param=name)


def _voice(request: Request, svc: Services) -> tuple[Whisper, Turn]:
    state = request.app.state
    if not hasattr(state, "whisper"):
        threads = svc.settings.voice.whisper_threads or svc.settings.engine.threads
        state.whisper = Whisper(
            svc.settings.store.home, threads, beam_size=svc.settings.voice.whisper_beam_size
        )
        state.whisper_turn = Turn(svc.settings.voice.audio_queue)
    return state.whisper, state.whisper_turn


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


async def _handle(request: Request, svc: Services, me: Principal, task: str) -> Response:
    voice = svc.settings.voice
    fields, path = await _form(request, voice.max_audio_mb * 1_000_000)
    streamed = False
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
        language = (fields.get("language") or "").strip().lower() or None
        whisper, turn = _voice(request, svc)

        def begin() -> Run:
            audio = decode(path, voice.max_audio_seconds)
            return whisper.start(
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
        slot = svc.scheduler.slot(ModelId(model.name), me.user, weight=weight)
        if stream:
            streamed = True
            return await _stream_transcript(path, slot, turn, begin)

        def work() -> Transcript:
            run = begin()
            found = list(run.segments())
            text = "".join(s.text for s in found).strip()
            return Transcript(text, run.language, run.duration, found)

        async with slot:
            result: Transcript = await turn.run(work)
    finally:
        if not streamed:
            path.unlink(missing_ok=True)
    return _render(result, fmt, task)


async def _stream_transcript(
    path: Path, slot: Any, turn: Turn, begin: Callable[[], Run]
) -> Response:
    """Server-sent events: a transcript.text.delta per segment as Whisper decodes it, with the
    progress (`iaforall`), then transcript.text.done; an error after the start is an error
    event in the chat streams' shape, then the end."""
    feed = Feed()

    def work() -> None:
        run = begin()
        feed.put(run)
        for segment in run.segments(feed.stop):
            feed.put(segment)

    async def produce() -> None:
        async with slot:
            await turn.run(work)

    try:
        run, rest = await feed.start(produce())
    finally:
        _discard(path)  # decoded by now, or refused
    return StreamingResponse(
        _transcript_events(run, rest), media_type="text/event-stream", headers=SSE_HEADERS
    )


async def _transcript_events(run: Run, rest: AsyncGenerator[Any, None]) -> AsyncIterator[bytes]:
    said: list[str] = []
    try:
        async for segment in rest:
            assert isinstance(segment, Segment)
            delta = segment.text if said else segment.text.lstrip()
            said.append(delta)
            yield _event(
                {
                    "type": "transcript.text.delta",
                    "delta": delta,
                    "iaforall": {
                        "progress": round(run.progress(segment.end), 3),
                        "seconds": min(segment.end, run.duration),
                        "duration": run.duration,
                    },
                }
            )
    except IAForAllError as exc:
        yield sse_error(exc)
        return
    except Exception as exc:
        log.exception("transcription failed mid-stream")
        yield sse_error(_failed(exc))
        return
    finally:
        await rest.aclose()
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
async def transcriptions(request: Request, svc: ServicesDep, me: PrincipalDep) -> Response:
    return await _handle(request, svc, me, "transcribe")


@router.post("/translations", response_model=None, openapi_extra=_audio_form(language=False))
async def translations(request: Request, svc: ServicesDep, me: PrincipalDep) -> Response:
    return await _handle(request, svc, me, "translate")


class SpeechBody(BaseModel):
    model: str
    input: str = Field(min_length=1, max_length=4096)
    voice: str
    response_format: str = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    instructions: str | None = None
    stream_format: Literal["audio", "sse"] = "audio"


# piper's processes are the machine's, not one app's: one speaker per keep-alive and eSpeak NG.
_speakers: dict[tuple[float, Choice], tts.Speaker] = {}


def _speaker(request: Request, svc: Services) -> tuple[tts.Speaker, Turn]:
    state = request.app.state
    if not hasattr(state, "speech_turn"):
        state.speech_turn = Turn(4, busy="speaking other text")
    turn: Turn = state.speech_turn
    speaker = getattr(state, "speaker", None)
    if speaker is None:
        key = (svc.settings.voice.piper_keep_alive, svc.settings.voice.espeak)
        if key not in _speakers:
            _speakers[key] = tts.Speaker(*key)
        speaker = _speakers[key]
    return speaker, turn


@router.post("/speech", response_model=None, openapi_extra=json_doc(SpeechBody))
async def speech(request: Request, svc: ServicesDep) -> Response:
    """The audio is sent as it is produced: the first sentence's as soon as it is spoken, then
    the rest a few sentences at a time (one piece of text: the whole file at once)."""
    body = await json_body(request, SpeechBody, limit=100_000)
    if body.model not in tts.MODELS:
        raise ModelNotFound(body.model)
    fmt = body.response_format
    if fmt not in SPEECH_FORMATS:
        raise InvalidRequest(
            f"'response_format' must be one of {', '.join(SPEECH_FORMATS)}.",
            param="response_format",
        )
    speaker, turn = _speaker(request, svc)
    voice = tts.resolve(body.voice, speaker.espeak)
    pieces = tts.split(body.input)
    if len(pieces) == 1 and body.stream_format == "audio":

        def whole() -> bytes:
            pcm, rate = speaker.synthesize(voice, pieces[0], body.speed)
            return encode(pcm, rate, fmt)

        audio: bytes = await turn.run(whole)
        return Response(audio, media_type=media_type(fmt))

    feed = Feed()

    def work() -> None:
        streamer: Streamer | None = None
        for pcm, rate in speaker.stream(voice, pieces, body.speed, feed.stop):
            streamer = streamer or Streamer(fmt, rate)
            if data := streamer.add(pcm):
                feed.put(data)
        if streamer is not None and (tail := streamer.close()):
            feed.put(tail)

    first, rest = await feed.start(turn.run(work))
    if body.stream_format == "sse":
        return StreamingResponse(
            _speech_events(first, rest, len(body.input)),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )
    return StreamingResponse(
        _audio(first, rest), media_type=media_type(fmt), headers={"Cache-Control": "no-cache"}
    )


async def _audio(first: bytes, rest: AsyncGenerator[Any, None]) -> AsyncIterator[bytes]:
    """The audio as it comes; a failure after the start ends the connection unfinished (the
    client sees an incomplete response, not a shorter file that looks whole)."""
    try:
        yield first
        async for data in rest:
            yield data
    except Exception:
        log.exception("speech synthesis failed mid-stream")
        raise
    finally:
        await rest.aclose()


async def _speech_events(
    first: bytes, rest: AsyncGenerator[Any, None], characters: int
) -> AsyncIterator[bytes]:
    """OpenAI's `stream_format: "sse"`: speech.audio.delta events (base64 audio), then
    speech.audio.done; an error after the start is an error event."""
    sent = 0
    data: bytes | None = first
    try:
        while data is not None:
            sent += len(data)
            yield _event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
            data = await anext(rest, None)
    except IAForAllError as exc:
        yield sse_error(exc)
        return
    except Exception as exc:
        log.exception("speech synthesis failed mid-stream")
        yield sse_error(_failed(exc))
        return
    finally:
        await rest.aclose()
    # No tokens are counted here (no model bills by token): usage is zero, honestly.
    usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    figures = {"characters": characters, "bytes": sent}
    yield _event({"type": "speech.audio.done", "usage": usage, "iaforall": figures})


@router.get("/voices")
async def voices(request: Request, svc: ServicesDep) -> dict[str, Any]:
    speaker, _ = _speaker(request, svc)
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
            for v in tts.voices(speaker.espeak)
        ],
    }
