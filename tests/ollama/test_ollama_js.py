"""An Ollama-speaking tool other than the Python client: the official Ollama JavaScript
client (npm `ollama`, installed by `make test` into tests/ollama/js), run by Node.js against
the real server, unchanged."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.real_server import SMOL, RealServer

JS = Path(__file__).parent / "js"


def test_the_javascript_client_lists_chats_streams_generates_and_embeds(
    server: RealServer,
) -> None:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "ollama").is_dir():
        pytest.fail(
            "Node.js and the npm package `ollama` are needed: run `scripts/install-system-deps.sh`"
            " as root, then `make test` (it runs `npm ci` in tests/ollama/js)."
        )
    run = subprocess.run(
        [node, "talk.mjs", server.url, SMOL],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert SMOL in result["models"] and result["show"] == "gguf"
    assert result["chat"]["content"] and result["chat"]["done"] is True
    assert result["chat"]["eval_count"] > 0
    assert result["stream"]["content"] and result["stream"]["done"] is True
    assert result["stream"]["done_reason"] in ("stop", "length")
    assert result["generate"]["response"] and result["generate"]["total_duration"] > 0
    assert result["embed"] == 512
    assert result["missing"]["status"] == 404 and "no-such-model" in result["missing"]["message"]
