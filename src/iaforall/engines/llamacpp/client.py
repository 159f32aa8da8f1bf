"""The HTTP client of a llama.cpp server: our own worker process, or a cluster replica.

Both speak llama.cpp's OpenAI-shaped HTTP with a bearer key, so one client serves both: a model
on a Ray cluster is the same engine placed elsewhere (cluster/), not a second code path.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from iaforall.core.errors import EngineUnavailable, RequestTimeout
from iaforall.core.events import Chunk
from iaforall.core.types import ChatRequest, GenerationRequest, ModelId, Usage
from iaforall.engines.llamacpp.assemble import assemble
from iaforall.engines.llamacpp.errors import error_from_body
from iaforall.engines.llamacpp.payload import chat_messages, request_path_and_body
from iaforall.engines.llamacpp.resume import Sent, completion_body, finish_reason, pausable
from iaforall.engines.llamacpp.toolcalls import recover_in_stream, tool_names
from iaforall.engines.protocol import BuiltinPrompt
from iaforall.models.system_prompt import builtin_prompt

REPLICA_HEADER = "X-IAForAll-Replica"  # which replica answered, when on a cluster
_USAGE_KEY = b'"usage":'
_ERROR_START = b'{"error"'


@dataclass(frozen=True, slots=True)
class Relayed:
    """A response being relayed as it comes: status, type, and the body's bytes."""

    status: int
    content_type: str
    body: AsyncIterator[bytes]


class WorkerClient:
    def __init__(
        self,
        model: ModelId,
        url: str,
        key: str,
        *,
        connections: int,
        read_timeout: float,
        template_default_system: bool,
        where: str = "engine",
    ) -> None:
        self.model = model
        self.url = url
        self._read_timeout = read_timeout
        self._template_default_system = template_default_system
        self._builtin: BuiltinPrompt | None = None  # read from the template once
        self._where = where  # "engine", or "replica": named in the errors users see
        self.served_by: Counter[str] = Counter()  # answers per replica (cluster/replica.py)
        # aiohttp, for its C HTTP parser: relaying a token costs the gateway half the CPU it
        # does with httpx (measured by bench/throughput.py), and on 2 cores that CPU is taken
        # from the engine.
        origin = urlsplit(url)
        self._prefix = origin.path.rstrip("/")  # a replica's route on Serve's proxy
        self.session = aiohttp.ClientSession(
            base_url=f"{origin.scheme}://{origin.netloc}",
            headers={"Authorization": f"Bearer {key}"} if key else None,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=read_timeout),
            connector=aiohttp.TCPConnector(limit=connections),
        )

    def stopped(self) -> EngineUnavailable:
        return EngineUnavailable(
            f"The {self._where} of '{self.model}' stopped while answering. It restarts on the "
            "next request: try again."
        )

    def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        chunks = self._stream(request)
        if isinstance(request, ChatRequest) and request.tools:
            return recover_in_stream(chunks, tool_names(request))
        return chunks

    async def _stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        path, body = request_path_and_body(
            request, stream=True, template_default_system=self._template_default_system
        )
        # llama.cpp names completions "chatcmpl-" too, where OpenAI says "cmpl-".
        rename_id = not isinstance(request, ChatRequest)
        async for data in self._events(path, body, until_done=True):
            if rename_id:
                data = data.replace(b'"id":"chatcmpl-', b'"id":"cmpl-', 1)
            if _USAGE_KEY in data:
                parsed = json.loads(data)
                yield Chunk(data, _usage(parsed), not parsed.get("choices"))
            else:
                yield Chunk(data)

    async def resume(
        self, request: GenerationRequest, sent: Sequence[Chunk]
    ) -> AsyncGenerator[Chunk, None]:
        """The rest of a paused chat (`pausable` ones), as the chat stream would have sent it
        (see resume.py)."""
        assert isinstance(request, ChatRequest)
        done = Sent.of(sent)
        prompt = await self._token_ids(await self.render_prompt(request), special=True)
        distinct = sorted(set(done.pieces))
        ids = await asyncio.gather(*(self._token_ids(p, special=False) for p in distinct))
        token_of = dict(zip(distinct, ids, strict=True))
        generated = [t for piece in done.pieces for t in token_of[piece]]
        _, chat = request_path_and_body(
            request, stream=True, template_default_system=self._template_default_system
        )
        body = completion_body(chat, prompt + generated, len(generated))
        last: dict[str, Any] = {"stop_type": "limit", "tokens_predicted": 0}
        if body is not None:
            async for data in self._events("/completion", body, until_done=False):
                last = json.loads(data)
                if last.get("content"):
                    yield done.text(last["content"])
                if last.get("stop"):
                    break
        yield done.end(finish_reason(last))
        usage = Usage(len(prompt), len(generated) + int(last.get("tokens_predicted", 0)))
        timings = last.get("timings")
        cached = int(timings.get("cache_n", 0)) if timings else 0
        yield done.usage(usage, min(len(prompt), cached), timings)

    async def _token_ids(self, text: str, *, special: bool) -> list[int]:
        """`text` in the model's tokens; `special`: as a whole prompt (special tokens added,
        the template's markup parsed), else as generated text."""
        body = {"content": text, "add_special": special, "parse_special": special}
        try:
            async with self.session.post(self._prefix + "/tokenize", json=body) as response:
                if response.status != 200:
                    raise error_from_body(response.status, await response.read())
                return [int(t) for t in (await response.json())["tokens"]]
        except aiohttp.ClientError:
            raise self.stopped() from None

    async def _events(
        self, path: str, body: dict[str, Any], *, until_done: bool
    ) -> AsyncGenerator[bytes, None]:
        """The data of each server-sent event of a streamed request, until [DONE], with the
        engine's failures as our errors; `until_done`: a stream that ends without [DONE] was
        cut off (the chat endpoints send it; a raw completion ends with its `stop` event)."""
        try:
            # llama.cpp closes the connection after a streamed answer whatever it announces:
            # say so, so that a connection is never reused half-closed.
            headers = {"Connection": "close"}
            async with self.session.post(
                self._prefix + path, json=body, headers=headers
            ) as response:
                if replica := response.headers.get(REPLICA_HEADER):
                    self.served_by[replica] += 1
                if response.status != 200:
                    raise error_from_body(response.status, await response.read())
                buffer = b""
                async for raw in response.content.iter_any():
                    buffer += raw
                    while (end := buffer.find(b"\n\n")) >= 0:
                        event, buffer = buffer[:end], buffer[end + 2 :]
                        if not event.startswith(b"data: "):
                            continue  # SSE comments and keep-alive pings
                        data = event[6:]
                        if data == b"[DONE]":
                            return
                        if data.startswith(_ERROR_START):
                            raise error_from_body(500, data)
                        yield data
        except aiohttp.ConnectionTimeoutError:  # before TimeoutError: it is one too
            raise EngineUnavailable(
                f"The {self._where} of '{self.model}' could not be reached: try again."
            ) from None
        except TimeoutError:
            raise RequestTimeout(
                f"The {self._where} of '{self.model}' sent nothing for "
                f"{self._read_timeout:.0f} s; the answer was stopped."
            ) from None
        except aiohttp.ClientError:
            raise self.stopped() from None
        if until_done:
            raise self.stopped()

    async def generate(self, request: GenerationRequest) -> dict[str, Any]:
        chunks = self.stream(request)
        try:
            return assemble([json.loads(chunk.data) async for chunk in chunks])
        finally:
            await chunks.aclose()

    async def render_prompt(self, request: ChatRequest) -> str:
        messages = chat_messages(request, template_default_system=self._template_default_system)
        return await self._apply_template(messages, request.tools)

    async def builtin_prompt(self) -> BuiltinPrompt:
        if self._builtin is None:
            text = await builtin_prompt(self._apply_template)
            self._builtin = BuiltinPrompt(text, self._template_default_system and text is not None)
        return self._builtin

    async def _apply_template(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] = ()
    ) -> str:
        body: dict[str, Any] = {"messages": list(messages)}
        if tools:
            body["tools"] = list(tools)
        try:
            async with self.session.post(self._prefix + "/apply-template", json=body) as response:
                if response.status != 200:
                    raise error_from_body(response.status, await response.read())
                return str((await response.json())["prompt"])
        except aiohttp.ClientError:
            raise self.stopped() from None

    async def count_tokens(self, text: str) -> int:
        """How many tokens a rendered prompt is: tokenized as llama.cpp does before
        generating (special tokens added, and parsed in the template's markup)."""
        body = {"content": text, "add_special": True, "parse_special": True}
        try:
            async with self.session.post(self._prefix + "/tokenize", json=body) as response:
                if response.status != 200:
                    raise error_from_body(response.status, await response.read())
                return len((await response.json())["tokens"])
        except aiohttp.ClientError:
            raise self.stopped() from None

    async def busy_slots(self) -> int | None:
        try:
            timeout = aiohttp.ClientTimeout(total=2.0)
            async with self.session.get(self._prefix + "/slots", timeout=timeout) as response:
                slots = await response.json()
            return sum(1 for s in slots if s.get("is_processing"))
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def relay(self, method: str, path: str, body: bytes) -> Relayed:
        """Send a request as it is and hand back the answer's bytes as they come."""
        response = await self.session.request(
            method, self._prefix + path, data=body, headers={"Content-Type": "application/json"}
        )

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for raw in response.content.iter_any():
                    yield raw
            finally:
                response.release()

        return Relayed(response.status, response.content_type, chunks())

    async def close(self) -> None:
        await self.session.close()


class ClientEngine:
    """What an engine does through its WorkerClient once ready (local worker or replica)."""

    def _ready(self) -> WorkerClient:
        raise NotImplementedError

    def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        return self._ready().stream(request)

    async def generate(self, request: GenerationRequest) -> dict[str, Any]:
        return await self._ready().generate(request)

    def pausable(self, request: GenerationRequest) -> bool:
        return pausable(request)

    def resume(
        self, request: GenerationRequest, sent: Sequence[Chunk]
    ) -> AsyncGenerator[Chunk, None]:
        return self._ready().resume(request, sent)

    async def render_prompt(self, request: ChatRequest) -> str:
        return await self._ready().render_prompt(request)

    async def count_tokens(self, text: str) -> int:
        return await self._ready().count_tokens(text)

    async def builtin_prompt(self) -> BuiltinPrompt:
        return await self._ready().builtin_prompt()


def _usage(chunk: dict[str, Any]) -> Usage:
    usage = chunk.get("usage") or {}
    return Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
