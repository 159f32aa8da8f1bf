"""Warming the voice at start: which runtimes fit (a table), and a real server that has
Whisper loaded and piper running before anyone spoke, or nothing when the budget is full."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iaforall.engines import tts, whisper
from iaforall.engines.warm_up import Candidate, choose, room
from tests.real_server import RealServer, launch_server, stop_server

MiB = 1024 * 1024
TINY, BASE, VOICE = Candidate("tiny", 90), Candidate("base", 185), Candidate("voice", 160)


@pytest.mark.parametrize(
    ("candidates", "space", "chosen"),
    [
        ([TINY, BASE, VOICE], 1000, ["tiny", "base", "voice"]),
        ([TINY, BASE, VOICE], 435, ["tiny", "base", "voice"]),  # exactly fits
        ([TINY, BASE, VOICE], 300, ["tiny", "base"]),
        ([TINY, BASE, VOICE], 260, ["tiny", "voice"]),  # base skipped, the voice after it fits
        ([TINY, BASE, VOICE], 89, []),
        ([TINY, BASE, VOICE], 0, []),
        ([Candidate("espeak only", 0)], 0, ["espeak only"]),  # keeps nothing: always warmed
        ([], 1000, []),
    ],
)
def test_choose(candidates: list[Candidate], space: int, chosen: list[str]) -> None:
    assert choose(candidates, space) == chosen


@pytest.mark.parametrize(
    ("budget", "used", "available", "expected"),
    [
        (1000, 300, 0, 700),  # the budget beside the resident models
        (1000, 300, 800, 400),  # but never more than half the free memory
        (0, 300, 800, 400),  # no budget: half the free memory
        (0, 0, 0, 0),  # nothing known: nothing warmed
        (1000, 1200, 800, 0),  # over budget already
    ],
)
def test_room(budget: int, used: int, available: int, expected: int) -> None:
    assert room(budget, used, available) == expected


def _runtimes(server: RealServer) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in server.health()["runtimes"]}


needs_voice = pytest.mark.skipif(
    "whisper:tiny.en" not in whisper.installed() or not tts.piper_voices(),
    reason="Whisper tiny.en and piper's voice are installed by `make test`",
)


@needs_voice
def test_a_server_starts_with_the_voice_warm(tmp_path: Path) -> None:
    server = launch_server(
        tmp_path / "home",
        tmp_path / "server.log",
        IAFORALL_WARM_UP="true",
        IAFORALL_PRELOAD="false",
    )
    try:

        def warm() -> bool:
            found = _runtimes(server)
            hearing = found.get("whisper:tiny.en", {})
            speaking = found.get("tts-1", {})
            return hearing.get("state") == "ready" and speaking.get("piper_processes", 0) >= 1

        server.wait_for(warm, 90, "Whisper loaded and piper running, before any request")
    finally:
        stop_server(server)


@needs_voice
def test_nothing_is_warmed_beyond_the_memory_budget(tmp_path: Path) -> None:
    server = launch_server(
        tmp_path / "home",
        tmp_path / "server.log",
        IAFORALL_WARM_UP="true",
        IAFORALL_PRELOAD="false",
        IAFORALL_MEMORY_BUDGET_MB="60",  # less than any of them keeps
        IAFORALL_LOG_LEVEL="info",
    )
    try:
        server.wait_for(lambda: "not warmed at start" in server.log.read_text(), 60, "the log")
        found = _runtimes(server)
        hearing = [r for name, r in found.items() if name.startswith("whisper")]
        assert all(r["state"] != "ready" for r in hearing), found
        assert found.get("tts-1", {}).get("piper_processes", 0) == 0, found
    finally:
        stop_server(server)
