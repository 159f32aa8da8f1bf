"""piper kept running: one process per voice (and speed), reused across requests.

piper is GPL-3.0, so it stays a separate program: we run its own command line, never import it.
Its line mode (`--output-dir`) reads one line of text at a time on stdin and, for each, writes a
WAV file and logs `Wrote <path>` on stderr; that log line is our "done". The ~1 s start (Python,
onnxruntime, the voice) is paid once, then only the synthesis itself.

A process serves one line at a time (a lock); one that died or hung is started again on the next
line; one left idle for `keep_alive` seconds is stopped, as are all at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import wave
from collections import deque
from pathlib import Path
from typing import IO

from iaforall.core.errors import EngineUnavailable

log = logging.getLogger(__name__)

LINE_TIMEOUT = 60.0  # seconds one line (a sentence or a few) may take
START_TIMEOUT = 60.0  # seconds the first line may take, the voice's loading included
MOST_RESIDENT = 2  # processes kept at once (a voice at a speed each); the oldest idle one goes


class Died(Exception):
    """The process ended, or stopped answering, while it was speaking a line."""


class Process:
    """One running piper with one voice at one speed."""

    def __init__(self, exe: str, model: str, length_scale: float) -> None:
        self.key = (model, round(length_scale, 3))
        self.lock = threading.Lock()
        self.last_used = time.monotonic()
        self.spoken = 0  # lines spoken so far
        self._out = Path(tempfile.mkdtemp(prefix="iaforall-piper-"))
        self._proc = subprocess.Popen(
            [
                exe,
                "-m",
                model,
                "--length-scale",
                f"{length_scale:.3f}",
                "--output-dir",
                str(self._out),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._recent: deque[str] = deque(maxlen=5)  # its last words, for error messages
        assert self._proc.stderr is not None
        threading.Thread(
            target=self._read, args=(self._proc.stderr,), name="piper-stderr", daemon=True
        ).start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self._lines.put(raw.decode(errors="replace").rstrip("\n"))
        self._lines.put(None)

    def say(self, line: str) -> tuple[bytes, int]:
        """16-bit mono PCM and its rate for one line of text (no newline in it, some word)."""
        assert self._proc.stdin is not None
        timeout = LINE_TIMEOUT if self.spoken else START_TIMEOUT
        try:
            self._proc.stdin.write(line.encode() + b"\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise Died(self._last_words()) from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                said = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.close()
                raise Died(f"no answer within {timeout:g} s") from None
            if said is None:
                raise Died(self._last_words())
            marker = said.find(":Wrote ")
            if marker < 0:
                self._recent.append(said)
                continue
            path = Path(said[marker + len(":Wrote ") :])
            try:
                with wave.open(str(path), "rb") as w:
                    rate = w.getframerate()
                    pcm = w.readframes(w.getnframes())
            finally:
                path.unlink(missing_ok=True)
            self.spoken += 1
            self.last_used = time.monotonic()
            return pcm, rate

    def _last_words(self) -> str:
        self._proc.poll()
        code = self._proc.returncode
        said = [s for s in self._recent if s.strip()]
        return (said[-1] if said else "") or f"piper exited with status {code}"

    def close(self) -> None:
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        shutil.rmtree(self._out, ignore_errors=True)


class Piper:
    """The resident processes, started on first use; `keep_alive` 0 starts one per request."""

    def __init__(self, exe: str, keep_alive: float = 600.0) -> None:
        self.exe = exe
        self.keep_alive = keep_alive
        self._procs: dict[tuple[str, float], Process] = {}
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None
        self._closed = threading.Event()
        atexit.register(self.close)

    def processes(self) -> list[Process]:
        with self._lock:
            return list(self._procs.values())

    def say(self, model: str, length_scale: float, line: str) -> tuple[bytes, int]:
        """One line spoken by a resident process; a process that dies on it is started again
        and given the line once more before the error is reported."""
        for attempt in (1, 2):
            proc = self._process(model, length_scale)
            with proc.lock:
                try:
                    return proc.say(line)
                except Died as exc:
                    self._forget(proc)
                    log.warning("piper (pid %d) stopped on a line: %s", proc.pid, exc)
                    if attempt == 2:
                        raise EngineUnavailable(f"Speech synthesis failed: {exc}") from None
        raise AssertionError("unreachable")

    def release(self) -> None:
        """The end of a request: with no keep-alive, its processes stop now."""
        if self.keep_alive > 0:
            return
        with self._lock:
            idle = [p for p in self._procs.values() if not p.lock.locked()]
            for p in idle:
                self._procs.pop(p.key)
        for p in idle:
            p.close()

    def _process(self, model: str, length_scale: float) -> Process:
        key = (model, round(length_scale, 3))
        with self._lock:
            proc = self._procs.get(key)
            if proc is not None and proc.alive():
                proc.last_used = time.monotonic()  # not reaped between here and its lock
                return proc
            if proc is not None:
                self._procs.pop(key)
                threading.Thread(target=proc.close, daemon=True).start()
            idle = sorted(
                (p for p in self._procs.values() if not p.lock.locked()),
                key=lambda p: p.last_used,
            )
            while len(self._procs) >= MOST_RESIDENT and idle:
                oldest = idle.pop(0)
                self._procs.pop(oldest.key, None)
                threading.Thread(target=oldest.close, daemon=True).start()
            try:
                proc = Process(self.exe, model, length_scale)
            except OSError as exc:
                raise EngineUnavailable(f"piper could not be started: {exc}") from None
            log.info("piper started (pid %d) for %s at length scale %.2f", proc.pid, *key)
            self._procs[key] = proc
            if self.keep_alive > 0 and self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="piper-reaper", daemon=True)
                self._reaper.start()
            return proc

    def _forget(self, proc: Process) -> None:
        with self._lock:
            if self._procs.get(proc.key) is proc:
                self._procs.pop(proc.key)
        proc.close()

    def _reap(self) -> None:
        """Stop the processes left idle for `keep_alive` seconds."""
        while not self._closed.wait(min(30.0, max(0.5, self.keep_alive / 4))):
            now = time.monotonic()
            with self._lock:
                idle = [
                    p
                    for p in self._procs.values()
                    if now - p.last_used >= self.keep_alive and not p.lock.locked()
                ]
                for p in idle:
                    self._procs.pop(p.key)
            for p in idle:
                log.info("piper (pid %d) idle for %.0f s: stopped", p.pid, now - p.last_used)
                p.close()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            procs = list(self._procs.values())
            self._procs.clear()
        for p in procs:
            p.close()
