"""A transcription whose audio arrives as it is spoken (a chunked WAV or raw PCM body): each
piece of speech a pause closes is transcribed while the person goes on speaking, so that when
the last byte arrives only the open tail is left to decode (engines/whisper/incoming.py).

Each piece takes its own place in the scheduler's line (answering/pieces.py): the Whisper slot
is held while a piece is decoded, never while the audio is awaited."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from iaforall.answering import Pipeline
from iaforall.answering.jobs import Tally
from iaforall.answering.pieces import Pieces
from iaforall.core.errors import InvalidRequest, UploadStalled
from iaforall.core.types import ModelId, Principal
from iaforall.engines.audio_cost import heard, transcription_estimate
from iaforall.engines.runtime import Runtime
from iaforall.engines.threaded import Put
from iaforall.engines.whisper import Run, Segment, Transcript
from iaforall.engines.whisper.incoming import SAMPLE_RATE, Listener, PcmReader
from iaforall.engines.whisper.runtime import WhisperRuntime

# Of the text already transcribed, this much is given to the next piece as its prompt (what
# Whisper does between its own windows: the words before help it read the words after).
PROMPT_CHARS = 400


@dataclass(frozen=True)
class Asked:
    """The request's options, checked (api/audio.py reads them from the query string)."""

    model: ModelId
    task: str
    language: str | None
    prompt: str | None
    temperature: float
    max_seconds: float
    idle_seconds: float


def arriving(request: Request) -> bool:
    """A body of audio itself (not a form): read as it arrives."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media.startswith("audio/") or media == "application/octet-stream"


Heard = Callable[[str], Awaitable[None]]


class _Transcription:
    def __init__(self, asked: Asked, pieces: Pieces, heard: Heard | None) -> None:
        self.heard = heard
        self.asked = asked
        self.pieces = pieces
        self.listener = Listener()
        self.found: list[Segment] = []
        self.language = asked.language

    async def decode(self, piece: tuple[int, int]) -> None:
        start, end = piece
        audio = self.listener.audio(start, end)
        seconds = audio.size / SAMPLE_RATE
        said = "".join(s.text for s in self.found).strip()
        prompt = " ".join(p for p in (self.asked.prompt, said[-PROMPT_CHARS:]) if p) or None
        asked, language = self.asked, self.language
        tally = Tally()

        def work(runtime: Runtime, put: Put[Any], stop: threading.Event) -> None:
            assert isinstance(runtime, WhisperRuntime)
            run = runtime.begin(
                audio,
                task=asked.task,
                language=language,
                prompt=prompt,
                temperature=asked.temperature,
                threads=tally.threads,
            )
            put(run)
            tokens = 0
            tally.usage = heard(0, 0)
            for segment in run.segments(stop):
                tokens += len(segment.tokens)
                tally.usage = heard(min(segment.end, run.duration), tokens)
                put(segment)
            if not stop.is_set():
                tally.usage = heard(run.duration, tokens)

        got = await self.pieces.run(transcription_estimate(seconds), work, tally)
        run = got[0]
        assert isinstance(run, Run)
        self.language = self.language or run.language  # the first piece's, for all the others
        offset = start / SAMPLE_RATE
        if self.heard is not None and (new := "".join(s.text for s in got[1:])):
            await self.heard(new if self.found else new.lstrip())
        for segment in got[1:]:
            self.found.append(
                dataclasses.replace(
                    segment,
                    id=len(self.found),
                    start=round(segment.start + offset, 2),
                    end=round(segment.end + offset, 2),
                )
            )

    async def listen(self, chunks: AsyncIterator[bytes], reader: PcmReader) -> Transcript:
        listener = self.listener
        decoding: asyncio.Task[None] | None = None
        try:
            async for chunk in bounded(chunks, self.asked):
                listener.add(reader.feed(chunk))
                if reader.seconds > self.asked.max_seconds + 1:
                    raise _too_long(self.asked.max_seconds)
                if decoding is not None and decoding.done():
                    await decoding  # its error, if any
                    decoding = None
                if decoding is None and listener.due():
                    piece = await asyncio.to_thread(listener.closed_piece)
                    if piece is not None:
                        decoding = asyncio.create_task(self.decode(piece))
            listener.add(reader.end())
            if listener.received == 0:
                raise InvalidRequest(
                    "The uploaded audio is empty.", param="file", code="empty_file"
                )
            if decoding is not None:
                await decoding
                decoding = None
            tail = await asyncio.to_thread(listener.tail)
            if tail is not None:
                await self.decode(tail)
        finally:
            if decoding is not None and not decoding.done():
                decoding.cancel()
                await asyncio.gather(decoding, return_exceptions=True)
        text = "".join(s.text for s in self.found).strip()
        duration = round(listener.received / SAMPLE_RATE, 2)
        return Transcript(text, self.language or "en", duration, self.found)


async def transcribe_arriving(
    request: Request, pipeline: Pipeline, me: Principal, asked: Asked
) -> Transcript:
    """The whole transcript, once the last byte has arrived and the tail is decoded."""
    reader = PcmReader(request.headers.get("content-type", ""))
    return await transcribe_chunks(request.stream(), reader, pipeline, me, asked)


async def transcribe_chunks(
    chunks: AsyncIterator[bytes],
    reader: PcmReader,
    pipeline: Pipeline,
    me: Principal,
    asked: Asked,
    heard: Heard | None = None,
) -> Transcript:
    """The transcript of the audio in `chunks` (read by `reader`), decoded in pieces as it
    arrives; `heard` is told each piece's text as soon as it is decoded."""
    async with pipeline.pieces(me, asked.model) as pieces:
        return await _Transcription(asked, pieces, heard).listen(chunks, reader)


async def bounded(chunks: AsyncIterator[bytes], asked: Asked) -> AsyncIterator[bytes]:
    """The chunks; refused when none comes for `idle_seconds`, or when the upload lasts much
    longer than the audio it may hold (a trickle that would hold the request forever)."""
    deadline = time.monotonic() + 2 * asked.max_seconds + asked.idle_seconds
    while True:
        wait = min(asked.idle_seconds, deadline - time.monotonic())
        try:
            chunk = await asyncio.wait_for(anext(chunks, None), timeout=max(wait, 0.001))
        except TimeoutError:
            raise UploadStalled(
                f"The audio stopped arriving: nothing came for {asked.idle_seconds:g} seconds "
                "(IAFORALL_STREAM_IDLE_SECONDS), or the upload lasted far longer than the "
                "audio allowed. Send the audio as it is spoken and end the body when done."
            ) from None
        except ClientDisconnect:  # nobody left to answer: ends the work without a trace
            raise InvalidRequest("The client left before its audio ended.") from None
        if chunk is None:
            return
        if chunk:
            yield chunk


def _too_long(max_seconds: float) -> InvalidRequest:
    return InvalidRequest(
        f"The audio is longer than the {max_seconds:g} seconds allowed "
        "(IAFORALL_MAX_AUDIO_SECONDS).",
        param="file",
        code="audio_too_long",
    )
