"""A Hub pull through a running server: nothing in the server's process turns the Hub off
(Whisper loads its models from local paths with `local_files_only`, not by setting
HF_HUB_OFFLINE for everyone)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.pull.servers import Served
from tests.real_server import launch_server, stop_server

REPO = "someone/Tiny-Model-GGUF"


def test_a_running_server_pulls_from_the_hub(
    tmp_path: Path, served: Served, base_url: str, gguf_bytes: bytes
) -> None:
    """`base_url` points HF_ENDPOINT at a fake Hub and unsets HF_HUB_OFFLINE, in the
    environment the server inherits."""
    served.repos[REPO] = {"tiny.Q4_K_M.gguf": gguf_bytes}
    server = launch_server(
        tmp_path / "home",
        tmp_path / "server.log",
        IAFORALL_PRELOAD="false",
        IAFORALL_PULL_ALLOW_PRIVATE="true",
    )
    try:
        pulled = httpx.post(
            f"{server.url}/api/pull",
            json={"model": f"hf.co/{REPO}:Q4_K_M", "stream": False},
            timeout=60,
        )
        assert pulled.status_code == 200, pulled.text
        assert pulled.json()["status"] == "success"
    finally:
        stop_server(server)


def test_a_running_server_tries_the_real_hub(tmp_path: Path) -> None:
    """With no Hub variable at all, a running server's pull of an hf.co name goes to
    huggingface.co: refused neither by an offline flag of its own nor with a server error.
    Without internet (as here) it fails as a network failure, 502; with internet, this
    repository does not exist: 404."""
    server = launch_server(
        tmp_path / "home",
        tmp_path / "server.log",
        unset=("HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_TOKEN"),
        IAFORALL_PRELOAD="false",
    )
    try:
        for stream in (False, True):
            pulled = httpx.post(
                f"{server.url}/api/pull",
                json={"model": "hf.co/iaforall-tests/no-such-model-GGUF:Q4_K_M", "stream": stream},
                timeout=120,
            )
            if stream:
                assert pulled.status_code == 200, pulled.text
                error = json.loads(pulled.text.splitlines()[-1])["error"]
            else:
                assert pulled.status_code in (502, 404), pulled.text
                error = pulled.json()["error"]
            assert "offline" not in error.lower(), error
            assert "could not be reached" in error or "has no repository" in error, error
    finally:
        stop_server(server)
