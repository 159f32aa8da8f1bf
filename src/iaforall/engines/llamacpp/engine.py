"""The supervisor of one llama.cpp worker process, and the client that talks to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import sys
from pathlib import Path
from typing import Any

import aiohttp

from iaforall.core.errors import EngineUnavailable
from iaforall.core.types import ModelId
from iaforall.engines.llamacpp.client import ClientEngine, WorkerClient
from iaforall.engines.llamacpp.worker import DEFAULT_CACHE_RAM_MB
from iaforall.engines.protocol import Capabilities, EngineState
from iaforall.settings import WORKER_KEY, child_environment

log = logging.getLogger(__name__)


class LlamaCppEngine(ClientEngine):
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
        prompt_cache_mb: int = DEFAULT_CACHE_RAM_MB,
        prompt_lookup: bool = False,
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
        self._prompt_cache_mb = prompt_cache_mb
        self.prompt_lookup = prompt_lookup  # n-gram speculative decoding in the worker
        self._state = EngineState.STOPPED
        self._proc: asyncio.subprocess.Process | None = None
        self.client: WorkerClient | None = None  # set once the worker is ready
        self._watcher: asyncio.Task[None] | None = None
        self._closing = False

    def worker_args(self) -> list[str]:
        """The worker's command-line arguments (see worker.py)."""
        args = ["--model", str(self.path), "--alias", self.model, "--threads", str(self._threads)]
        args += ["--parallel", str(self.capabilities.slots)]
        args += ["--ctx-per-slot", str(self.capabilities.context_length)]
        args += ["--cache-ram-mb", str(self._prompt_cache_mb)]
        if self.mmproj is not None:
            args += ["--mmproj", str(self.mmproj)]
        if self.prompt_lookup:
            args.append("--prompt-lookup")
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
                env=child_environment({WORKER_KEY: key}),
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
        self.client = WorkerClient(
            self.model,
            url,
            key,
            connections=self.capabilities.slots + 4,
            read_timeout=self._read_timeout,
            template_default_system=self._template_default_system,
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
        # the log names files and the machine: it stays in the server's log, for the operator
        log.error(
            "the worker of %s exited with code %s while loading; last log lines:\n%s",
            self.model,
            proc.returncode,
            self._log_tail(),
        )
        raise EngineUnavailable(
            f"The model '{self.model}' failed to load (worker exit code {proc.returncode}). "
            "The server's log says why."
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

    def _ready(self) -> WorkerClient:
        if self._state is not EngineState.READY or self.client is None:
            raise EngineUnavailable(
                f"The model '{self.model}' is not running (state: {self._state.value}). Try again."
            )
        return self.client

    def _ready_client(self) -> aiohttp.ClientSession:
        return self._ready().session

    def _crashed(self) -> EngineUnavailable:
        return self._ready().stopped()

    async def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"pid": self.pid, "rss_bytes": _rss(self.pid), "busy_slots": None}
        if self._state is EngineState.READY and self.client is not None:
            stats["busy_slots"] = await self.client.busy_slots()
        return stats

    async def close(self) -> None:
        self._closing = True
        self._state = EngineState.STOPPED
        if self.client is not None:
            await self.client.close()
            self.client = None
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
