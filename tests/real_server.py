"""The real server, in its own process on a free loopback port, with real models from packages."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from iaforall.models.store import ModelStore

SMOL = "smollm2:135m"
QWEN = "qwen2.5-coder:0.5b"
MONITOR_TOKEN = secrets.token_urlsafe(16)  # reads /health's details and /metrics


@dataclass
class RealServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def health(self) -> dict[str, Any]:
        """The details, read with the monitoring token (accounts on or not)."""
        headers = {"Authorization": f"Bearer {MONITOR_TOKEN}"}
        result: dict[str, Any] = httpx.get(f"{self.url}/health", headers=headers, timeout=5).json()
        return result

    def model(self, name: str) -> dict[str, Any] | None:
        return next((m for m in self.health()["models"] if m["name"] == name), None)

    def worker_pid(self, name: str) -> int:
        model = self.model(name)
        assert model is not None and model["pid"], f"{name} is not loaded"
        return int(model["pid"])

    def wait_for(self, condition: Any, timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.log.read_text()[-3000:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the two test models, rebuilt and verified from their installed packages."""
    home = tmp_path_factory.mktemp("iaforall-home")
    store = ModelStore(home, install_missing=False)
    for name in (SMOL, QWEN):
        store.pull_packaged(name)
    return home


def launch_server(home: Path, log: Path, *, unset: Collection[str] = (), **env: str) -> RealServer:
    """`iaforall serve` on a free loopback port, once it answers; with `env` added to this
    process's environment, and without the variables named in `unset`."""
    port = free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if k not in unset},
        "IAFORALL_HOME": str(home),
        "IAFORALL_MODEL": SMOL,
        "IAFORALL_THREADS": "2",
        "IAFORALL_CONTEXT_LENGTH": "2048",
        "IAFORALL_LOG_LEVEL": "warning",
        "IAFORALL_METRICS_TOKEN": MONITOR_TOKEN,
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "iaforall", "serve", "--port", str(port)],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = RealServer(f"http://127.0.0.1:{port}", process, log)

    def answers() -> bool:
        assert process.poll() is None, f"server exited:\n{log.read_text()}"
        try:
            return httpx.get(f"{server.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    server.wait_for(answers, 60, "the server")
    return server


def start_server(home: Path, log: Path, **env: str) -> RealServer:
    """A server with `home`'s models, once its default model is loaded."""
    server = launch_server(home, log, **env)

    def preloaded() -> bool:
        assert server.process.poll() is None, f"server exited:\n{log.read_text()}"
        model = server.model(SMOL)
        return model is not None and model["state"] == "ready"

    server.wait_for(preloaded, 60, "the default model")
    return server


def stop_server(server: RealServer) -> None:
    server.process.send_signal(signal.SIGINT)
    try:
        server.process.wait(15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def server(model_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """The main server: two slots per model, default settings otherwise."""
    log = tmp_path_factory.mktemp("logs") / "server.log"
    real = start_server(model_home, log, IAFORALL_PARALLEL="2")
    yield real
    stop_server(real)


@pytest.fixture(scope="module")
def tight_server(
    model_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealServer]:
    """One slot, a queue of one and a short request timeout: for busy, disconnect, timeout."""
    log = tmp_path_factory.mktemp("logs") / "tight.log"
    real = start_server(
        model_home,
        log,
        IAFORALL_PARALLEL="1",
        IAFORALL_MAX_QUEUE="1",
        IAFORALL_REQUEST_TIMEOUT="6",
    )
    yield real
    stop_server(real)


COUNTING = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"


def long_completion(model: str = SMOL, max_tokens: int = 1500, **extra: Any) -> dict[str, Any]:
    """A raw completion that keeps counting: long, steady output on any model."""
    return {"model": model, "prompt": COUNTING, "max_tokens": max_tokens, "temperature": 0, **extra}
