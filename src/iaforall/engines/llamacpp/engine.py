"""The supervisor of one llama.cpp worker process, and the client that talks to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import aiohttp

from iaforall.core.errors import EngineUnavailable, RequestTimeout
from iaforall.core.types import ChatRequest, GenerationRequest, ModelId, Usage
from iaforall.engines.llamacpp.assemble import assemble
from iaforall.engines.llamacpp.errors import error_from_body
from iaforall.engines.llamacpp.payload import chat_messages, request_path_and_body
from iaforall.engines.llamacpp.toolcalls import recover_in_stream, tool_names
from iaforall.engines.protocol import Capabilities, Chunk, EngineState

log = logging.getLogger(__name__)

_USAGE_KEY = b'"usage":'
_ERROR_START = b'{"error"'


class LlamaCppEngine:
    """One model in its own process; a crash there ends in-flight requests with a clean error."""

    def __init__(
        self,
        model: ModelId,
        path: Path,
        capabilities: Capabilities,
        *,
        threads: int,
        log_file: Path,
        load_timeout: float,
        read_timeout: float,
        template_default_system: bool,
        mmproj: Path | None = None,
    ) -> None:
        self.model = model
        self.path = path
        self.mmproj = mmproj  # a vision projector: image parts then go to llama.cpp as they are
        self.capabilities = capabilities
        self._threads = threads
        self._log_file = log_file
        self._load_timeout = load_timeout
        self._read_timeout = read_timeout
        self._template_default_system = template_default_system
        self._state = EngineState.STOPPED
        self._proc: asyncio.subprocess.Process | None = None
        self._client: aiohttp.ClientSession | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._closing = False

    def worker_args(self) -> list[str]:
        """The worker's command-line arguments (see worker.py)."""
        args = ["--model", str(self.path), "--alias", self.model, "--threads", str(self._threads)]
        args += ["--parallel", str(self.capabilities.slots)]
        args += ["--ctx-per-slot", str(self.capabilities.context_length)]
        if self.mmproj is not None:
            args += ["--mmproj", str(self.mmproj)]
        return args

    @property
    def state(self) -> EngineState:
        return self._state

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self) -> None:
        self._state = EngineState.LOADING
        self._closing = False
        key = secrets.token_urlsafe(24)
        self._log_file.parent.mkdir(parents=True, exist_ok=True)
        with self._log_file.open("ab") as log_out:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "iaforall.engines.llamacpp.worker",
                *self.worker_args(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_out,
                env={**os.environ, "IAFORALL_WORKER_KEY": key},
            )
        try:
            url = await asyncio.wait_for(self._read_ready(self._proc), self._load_timeout)
        except (TimeoutError, EngineUnavailable) as exc:
            await self._kill()
            self._state = EngineState.CRASHED
            if isinstance(exc, EngineUnavailable):
                raise
            raise EngineUnavailable(
                f"The model '{self.model}' did not load within {self._load_timeout:.0f} s."
            ) from None
        # aiohttp, for its C HTTP parser: relaying a token costs the gateway half the CPU it
        # does with httpx (measured by bench/throughput.py), and on 2 cores that CPU is taken
        # from the engine.
        self._client = aiohttp.ClientSession(
            base_url=url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=5.0, sock_read=self._read_timeout
            ),
            connector=aiohttp.TCPConnector(limit=self.capabilities.slots + 4),
        )
        self._watcher = asyncio.create_task(self._watch(self._proc))
        self._state = EngineState.READY
        log.info("model %s loaded (worker pid %s)", self.model, self._proc.pid)

    async def _read_ready(self, proc: asyncio.subprocess.Process) -> str:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and message.get("ready"):
                    return str(message["url"])
        await proc.wait()
        raise EngineUnavailable(
            f"The model '{self.model}' failed to load (worker exit code {proc.returncode}). "
            f"Last log lines:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 8) -> str:
        try:
            text = self._log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if not self._closing:
            self._state = EngineState.CRASHED
            log.error(
                "worker of %s died (exit code %s); it restarts on the next request",
                self.model,
                code,
            )

    def _ready_client(self) -> aiohttp.ClientSession:
        if self._state is not EngineState.READY or self._client is None:
            raise EngineUnavailable(
                f"The model '{self.model}' is not running (state: {self._state.value}). Try again."
            )
        return self._client

    def _crashed(self) -> EngineUnavailable:
        return EngineUnavailable(
            f"The engine of '{self.model}' stopped while answering. It restarts on the next "
            "request: try again."
        )

    def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        chunks = self._stream(request)
        if isinstance(request, ChatRequest) and request.tools:
            return recover_in_stream(chunks, tool_names(request))
        return chunks

    async def _stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        client = self._ready_client()
        path, body = request_path_and_body(
            request, stream=True, template_default_system=self._template_default_system
        )
        # llama.cpp names completions "chatcmpl-" too, where OpenAI says "cmpl-".
        rename_id = not isinstance(request, ChatRequest)
        try:
            # llama.cpp closes the connection after a streamed answer whatever it announces:
            # say so, so that a connection is never reused half-closed.
            headers = {"Connection": "close"}
            async with client.post(path, json=body, headers=headers) as response:
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
                        if rename_id:
                            data = data.replace(b'"id":"chatcmpl-', b'"id":"cmpl-', 1)
                        if _USAGE_KEY in data:
                            parsed = json.loads(data)
                            yield Chunk(data, _usage(parsed), not parsed.get("choices"))
                        else:
                            yield Chunk(data)
        except TimeoutError:
            raise RequestTimeout(
                f"The engine of '{self.model}' sent nothing for {self._read_timeout:.0f} s; "
                "the answer was stopped."
            ) from None
        except aiohttp.ClientError:
            raise self._crashed() from None
        if self._state is not EngineState.READY:
            raise self._crashed()

    async def generate(self, request: GenerationRequest) -> dict[str, Any]:
        async with contextlib.aclosing(self.stream(request)) as chunks:
            return assemble([json.loads(chunk.data) async for chunk in chunks])

    async def render_prompt(self, request: ChatRequest) -> str:
        client = self._ready_client()
        body: dict[str, Any] = {
            "messages": chat_messages(
                request, template_default_system=self._template_default_system
            )
        }
        if request.tools:
            body["tools"] = list(request.tools)
        try:
            async with client.post("/apply-template", json=body) as response:
                if response.status != 200:
                    raise error_from_body(response.status, await response.read())
                return str((await response.json())["prompt"])
        except aiohttp.ClientError:
            raise self._crashed() from None

    async def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"pid": self.pid, "rss_bytes": _rss(self.pid), "busy_slots": None}
        if self._state is EngineState.READY and self._client is not None:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                timeout = aiohttp.ClientTimeout(total=2.0)
                async with self._client.get("/slots", timeout=timeout) as response:
                    slots = await response.json()
                stats["busy_slots"] = sum(1 for s in slots if s.get("is_processing"))
        return stats

    async def close(self) -> None:
        self._closing = True
        self._state = EngineState.STOPPED
        if self._client is not None:
            await self._client.close()
            self._client = None
        await self._kill()
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the worker exits at EOF on stdin
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _usage(chunk: dict[str, Any]) -> Usage:
    usage = chunk.get("usage") or {}
    return Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))


def _rss(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
