"""A voice session over a WebSocket, in the habit of OpenAI's Realtime API (its transcription
intent): the audio is appended as it is spoken, each piece a pause closes is transcribed at once
(its text sent as a delta), and a commit leaves only the tail to decode.

Why a WebSocket for the browser: Chromium streams a request body (`fetch` with `duplex: "half"`)
only over HTTP/2 or later, and the server speaks HTTP/1.1; a socket streams on any connection.
Other clients can also send a chunked body to /v1/audio/transcriptions (api/audio_arriving.py).

    GET /v1/realtime?intent=transcription            (WebSocket)
    → {"type": "transcription_session.update", "session": {"input_audio_format": "pcm16",
         "input_audio_transcription": {"model": "whisper:tiny.en", "language": "en"},
         "iaforall": {"sample_rate": 16000}}}
    ← transcription_session.updated
    → {"type": "input_audio_buffer.append", "audio": "<base64 16-bit little-endian mono PCM>"}
    ← conversation.item.input_audio_transcription.delta  (each closed piece, while it goes on)
    → {"type": "input_audio_buffer.commit"}  (or .clear to drop what was appended)
    ← input_audio_buffer.committed, then conversation.item.input_audio_transcription.completed
    ← {"type": "error", "error": {...}} for a bad message or audio; the session goes on.

pcm16 is 24 kHz as in OpenAI's API unless `iaforall.sample_rate` says otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect

from iaforall.answering import Pipeline
from iaforall.api.audio_arriving import Asked, transcribe_chunks
from iaforall.api.auth import authenticate, refuse_other_sites
from iaforall.api.policy import policy_of
from iaforall.core.errors import IAForAllError, InvalidRequest
from iaforall.core.types import Principal
from iaforall.engines import whisper
from iaforall.engines.whisper.incoming import PcmReader
from iaforall.services import Services

log = logging.getLogger(__name__)

router = APIRouter(tags=["OpenAI-compatible: audio"])

OPENAI_PCM16_RATE = 24_000
# A socket with no audio under way is closed after this long without a message.
IDLE_SESSION_SECONDS = 300
# One message: a few seconds of audio, base64-encoded, at most.
MAX_MESSAGE_BYTES = 1_000_000


class _Cleared(Exception):
    """The client dropped the audio appended so far."""


class _Session:
    def __init__(self, ws: WebSocket, svc: Services, pipeline: Pipeline, me: Principal) -> None:
        self.ws = ws
        self.svc = svc
        self.pipeline = pipeline
        self.me = me
        self.model = "whisper:tiny.en"
        self.language: str | None = None
        self.prompt: str | None = None
        self.rate = OPENAI_PCM16_RATE
        self.items = itertools.count(1)

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(event, ensure_ascii=False))

    async def error(self, exc: IAForAllError) -> None:
        await self.send(
            {
                "type": "error",
                "error": {
                    "type": exc.type,
                    "code": exc.code,
                    "message": exc.message,
                    "param": exc.param,
                },
            }
        )

    async def message(self, patience: float) -> dict[str, Any] | None:
        """The next event (None when the client closed); a bad one raises InvalidRequest."""
        try:
            raw = await asyncio.wait_for(self.ws.receive(), timeout=patience)
        except TimeoutError:
            return None
        if raw["type"] == "websocket.disconnect":
            return None
        data = raw.get("bytes")
        text = raw.get("text") or ""
        if len(data or text) > MAX_MESSAGE_BYTES:
            raise InvalidRequest("A message may hold at most 1 MB: send the audio in pieces.")
        if data is not None:  # a binary frame: the audio itself
            return {"type": "input_audio_buffer.append", "pcm": data}
        try:
            event = json.loads(text)
        except ValueError:
            raise InvalidRequest("Each message must be a JSON object with a 'type'.") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise InvalidRequest("Each message must be a JSON object with a 'type'.")
        return event

    def update(self, session: dict[str, Any]) -> None:
        heard = session.get("input_audio_transcription") or {}
        fmt = session.get("input_audio_format", "pcm16")
        if fmt != "pcm16":
            raise InvalidRequest("Only 'pcm16' audio is read here.", param="input_audio_format")
        rate = (session.get("iaforall") or {}).get("sample_rate", self.rate)
        if not isinstance(rate, int) or not 8_000 <= rate <= 48_000:
            raise InvalidRequest("'sample_rate' must be between 8000 and 48000.")
        model = str(heard.get("model") or self.model)
        spec = whisper.resolve(model, self.svc.settings.store.home)  # 404 when not installed
        language = str(heard.get("language") or "").strip().lower() or None
        whisper.refuse_options(spec, "transcribe", language)
        self.model, self.language, self.rate = spec.name, language, rate
        self.prompt = heard.get("prompt") or None

    async def audio(self, first: bytes) -> AsyncIterator[bytes]:
        """The audio of one item: appended until a commit (a clear raises _Cleared)."""
        yield first
        while True:
            event = await self.message(self.svc.settings.voice.stream_idle_seconds + 1)
            if event is None:
                raise WebSocketDisconnect()
            kind = event["type"]
            if kind == "input_audio_buffer.append":
                yield _pcm(event)
            elif kind == "input_audio_buffer.commit":
                return
            elif kind == "input_audio_buffer.clear":
                raise _Cleared()
            else:
                raise InvalidRequest(f"'{kind}' cannot come while audio is being appended.")

    async def item(self, first: bytes) -> None:
        item_id = f"item_{next(self.items)}"
        spec = whisper.resolve(self.model, self.svc.settings.store.home)
        voice = self.svc.settings.voice
        asked = Asked(
            model=self.pipeline.runtime(spec.name, "speech_to_text"),
            task="transcribe",
            language=self.language or ("en" if not spec.multilingual else None),
            prompt=self.prompt,
            temperature=0.0,
            max_seconds=voice.max_audio_seconds,
            idle_seconds=voice.stream_idle_seconds,
        )

        async def heard(delta: str) -> None:
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item_id,
                    "content_index": 0,
                    "delta": delta,
                }
            )

        reader = PcmReader("audio/pcm", rate=self.rate)
        result = await transcribe_chunks(
            self.audio(first), reader, self.pipeline, self.me, asked, heard
        )
        await self.send({"type": "input_audio_buffer.committed", "item_id": item_id})
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": result.text,
                "iaforall": {"language": result.language, "duration": result.duration},
            }
        )

    async def run(self) -> None:
        while True:
            try:
                event = await self.message(IDLE_SESSION_SECONDS)
                if event is None:
                    return
                kind = event["type"]
                if kind in ("transcription_session.update", "session.update"):
                    self.update(event.get("session") or {})
                    await self.send({"type": "transcription_session.updated"})
                elif kind == "input_audio_buffer.append":
                    await self.item(_pcm(event))
                elif kind in ("input_audio_buffer.commit", "input_audio_buffer.clear"):
                    if kind == "input_audio_buffer.commit":
                        raise InvalidRequest("Nothing was appended to commit.")
                    await self.send({"type": "input_audio_buffer.cleared"})
                else:
                    raise InvalidRequest(f"Unknown message type '{kind}'.", param="type")
            except _Cleared:
                await self.send({"type": "input_audio_buffer.cleared"})
            except IAForAllError as exc:
                await self.error(exc)


def _pcm(event: dict[str, Any]) -> bytes:
    if "pcm" in event:
        return bytes(event["pcm"])
    try:
        return base64.b64decode(str(event.get("audio", "")), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("'audio' must be base64-encoded PCM.", param="audio") from None


@router.websocket("/v1/realtime")
async def realtime(ws: WebSocket) -> None:
    # The handshake read as the GET it is, for the checks every route makes; and, since a
    # page of any site can open a socket with the person's cookies, other sites refused here.
    scheme = "https" if ws.url.scheme == "wss" else "http"  # what the page's origin says
    request = Request({**ws.scope, "type": "http", "method": "GET", "scheme": scheme})
    try:
        me = await authenticate(request)
        refuse_other_sites(request, "open a voice session")
        if ws.query_params.get("intent", "transcription") != "transcription":
            raise InvalidRequest("Only the transcription intent is served: ?intent=transcription")
    except IAForAllError as exc:
        log.info("voice session refused: %s", exc.message)
        await ws.close(code=1008, reason=exc.message[:120])
        return
    svc: Services = ws.app.state.services
    pipeline = svc.pipeline(await policy_of(ws.app.state.policy_rules, svc))
    await ws.accept()
    await ws.send_text(json.dumps({"type": "transcription_session.created"}))
    try:
        await _Session(ws, svc, pipeline, me).run()
    except WebSocketDisconnect:
        return
    await ws.close()
