"""The server's side of an image model: its worker process (`worker.py`), started on first use
and kept, one drawing at a time. A worker that dies (a crash, an out-of-memory, `kill -9`)
fails the drawing in progress with a clean 503 and is started again by the next one; a drawing
whose client left is cancelled between two steps."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from iaforall.core.errors import EngineUnavailable, RequestTimeout
from iaforall.core.types import ModelId
from iaforall.engines.images.folder import weights
from iaforall.engines.protocol import EngineState
from iaforall.engines.runtime import RuntimeCapabilities

log = logging.getLogger(__name__)

CANCEL_WAIT = 10.0  # seconds a cancelled drawing may take to reach the end of its step
# ONNX Runtime's arenas and the activations of a 512x512 UNet pass, beyond the weights
ACTIVATIONS = 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Ask:
    """One picture to draw."""

    prompt: str
    width: int
    height: int
    steps: int
    seed: int
    format: str
    quality: int
    previews: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    step: int
    steps: int


@dataclass(frozen=True, slots=True)
class Preview:
    data: bytes
    index: int


Heard = Step | Preview


class _Process:
    def __init__(self, folder: Path, threads: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "iaforall.engines.images.worker",
                "--folder",
                str(folder),
                "--threads",
                str(threads),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            with contextlib.suppress(ValueError):
                self.lines.put(json.loads(raw))
        self.lines.put(None)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, line: dict[str, Any]) -> bool:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(line).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ImageRuntime:
    """A text-to-image model from the store, in its worker process."""

    def __init__(self, name: str, folder: Path, threads: int, timeout: float) -> None:
        self.model = ModelId(name)
        self.folder = folder
        self.timeout = timeout  # seconds for the load, and for each step
        memory = sum(p.stat().st_size for p in weights(folder)) + ACTIVATIONS
        self.capabilities = RuntimeCapabilities("image", threads=max(1, threads), memory=memory)
        self._process: _Process | None = None
        self._lock = threading.Lock()  # one drawing at a time, one start at a time
        self._ids = itertools.count(1)
        self.drawn = 0
        self.cancelled = 0
        self.last_steps = 0  # steps the last drawing ran (fewer when it was cancelled)

    @property
    def state(self) -> EngineState:
        process = self._process
        return EngineState.READY if process is not None and process.alive() else EngineState.STOPPED

    def pid(self) -> int | None:
        process = self._process
        return process.proc.pid if process is not None and process.alive() else None

    async def start(self) -> None:
        await asyncio.to_thread(self._started)

    def _started(self) -> _Process:
        with self._lock:
            return self._ready()

    def _ready(self) -> _Process:
        """The running worker, started (and loaded) now if there is none."""
        process = self._process
        if process is not None and process.alive():
            return process
        if process is not None:
            threading.Thread(target=process.close, daemon=True).start()
        self._process = None
        try:
            process = _Process(self.folder, self.capabilities.threads)
        except OSError as exc:
            raise EngineUnavailable(f"The image engine could not be started: {exc}") from None
        try:
            first = process.lines.get(timeout=self.timeout)
        except queue.Empty:
            process.proc.kill()
            raise EngineUnavailable(
                f"The image model '{self.model}' did not load within {self.timeout:.0f} s."
            ) from None
        if first is None or not first.get("ready"):
            process.close()
            said = (first or {}).get("error") or f"exit status {process.proc.returncode}"
            raise EngineUnavailable(f"The image model '{self.model}' could not be loaded: {said}")
        log.info("image worker for %s started (pid %d)", self.model, process.proc.pid)
        self._process = process
        return process

    def draw(self, ask: Ask, heard: Callable[[Heard], None], stop: threading.Event) -> bytes:
        """The picture's file; its steps (and previews) told to `heard` as they come. Blocks;
        when `stop` is set, the worker is told to stop after its current step."""
        with self._lock:
            process = self._ready()
            ident = next(self._ids)
            self.last_steps = 0
            line = {"id": ident, **_fields(ask)}
            if not process.send(line):
                raise self._stopped(process)
            cancel_sent = 0.0
            deadline = time.monotonic() + self.timeout
            while True:
                if stop.is_set() and not cancel_sent:
                    process.send({"cancel": ident})
                    cancel_sent = time.monotonic()
                    deadline = cancel_sent + CANCEL_WAIT
                try:
                    said = process.lines.get(timeout=0.05)
                except queue.Empty:
                    if time.monotonic() > deadline:
                        return self._overdue(process, cancel_sent)
                    continue
                if said is None:
                    raise self._stopped(process)
                if said.get("id") != ident:
                    continue  # the end of an earlier, cancelled drawing
                deadline = time.monotonic() + self.timeout
                if "step" in said:
                    self.last_steps = int(said["step"])
                    heard(Step(int(said["step"]), int(said["steps"])))
                elif "preview" in said:
                    heard(Preview(base64.b64decode(said["preview"]), int(said["index"])))
                elif "image" in said:
                    self.drawn += 1
                    return base64.b64decode(said["image"])
                elif said.get("cancelled"):
                    self.cancelled += 1
                    return b""
                else:
                    raise EngineUnavailable(
                        f"The image model '{self.model}' failed: {said.get('error', 'no image')}"
                    )

    def _overdue(self, process: _Process, cancel_sent: float) -> bytes:
        """A step that took too long, or a cancel not heard in time: the worker is stopped."""
        process.proc.kill()
        self._process = None
        if cancel_sent:
            self.cancelled += 1
            return b""
        raise RequestTimeout(
            f"A step of the image model '{self.model}' took more than {self.timeout:.0f} s; the "
            "drawing was stopped (IAFORALL_DRAW_TIMEOUT)."
        )

    def _stopped(self, process: _Process) -> EngineUnavailable:
        process.proc.wait()
        code = process.proc.returncode
        self._process = None
        log.warning("image worker for %s stopped (exit status %s)", self.model, code)
        return EngineUnavailable(
            f"The image engine of '{self.model}' stopped while drawing (exit status {code}). "
            "It starts again on the next request: try again."
        )

    async def stats(self) -> dict[str, Any]:
        return {
            "pid": self.pid(),
            "threads": self.capabilities.threads,
            "memory_estimate": self.capabilities.memory,
            "drawn": self.drawn,
            "cancelled": self.cancelled,
            "last_steps": self.last_steps,
        }

    async def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            await asyncio.to_thread(process.close)


def _fields(ask: Ask) -> dict[str, Any]:
    return {
        "prompt": ask.prompt,
        "width": ask.width,
        "height": ask.height,
        "steps": ask.steps,
        "seed": ask.seed,
        "format": ask.format,
        "quality": ask.quality,
        "previews": ask.previews,
    }
