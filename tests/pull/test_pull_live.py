"""A Hub pull through a running server: nothing in the server's process turns the Hub off
(Whisper loads its models from local paths with `local_files_only`, not by setting
HF_HUB_OFFLINE for everyone)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.pull.servers import Served
from tests.real_server import RealServer, free_port, stop_server

REPO = "someone/Tiny-Model-GGUF"


def test_a_running_server_pulls_from_the_hub(
    tmp_path: Path, served: Served, base_url: str, gguf_bytes: bytes
) -> None:
    served.repos[REPO] = {"tiny.Q4_K_M.gguf": gguf_bytes}
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_HUB_OFFLINE")}
    env |= {
        "IAFORALL_HOME": str(tmp_path / "home"),
        "IAFORALL_PRELOAD": "false",
        "IAFORALL_PULL_ALLOW_PRIVATE": "true",
        "HF_ENDPOINT": base_url,
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "iaforall", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = RealServer(f"http://127.0.0.1:{port}", process, log)
    try:

        def up() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"{server.url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        server.wait_for(up, 60, "the server")
        pulled = httpx.post(
            f"{server.url}/api/pull",
            json={"model": f"hf.co/{REPO}:Q4_K_M", "stream": False},
            timeout=60,
        )
        assert pulled.status_code == 200, pulled.text
        assert pulled.json()["status"] == "success"
    finally:
        stop_server(server)
