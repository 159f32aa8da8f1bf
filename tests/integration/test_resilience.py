"""Worker crashes, clients that leave, a full queue and timeouts, on the real server."""

from __future__ import annotations

import json
import os
import signal
import threading
from typing import Any

import httpx
import pytest

from tests.real_server import QWEN, SMOL, RealServer, long_completion


def sse_frames(response: httpx.Response) -> list[Any]:
    frames: list[Any] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[6:]
            frames.append(data if data == "[DONE]" else json.loads(data))
    return frames


def busy(server: RealServer, name: str = SMOL) -> int:
    model = server.model(name)
    return int(model["busy_slots"] or 0) if model else 0


def test_worker_killed_mid_stream_ends_cleanly_and_restarts(server: RealServer) -> None:
    # Another model, loaded and answering, must not notice.
    httpx.post(
        f"{server.v1}/completions",
        json={"model": QWEN, "prompt": "1,", "max_tokens": 2},
        timeout=60,
    )
    qwen_pid = server.worker_pid(QWEN)
    pid = server.worker_pid(SMOL)
    with httpx.stream(
        "POST", f"{server.v1}/completions", json=long_completion(stream=True), timeout=60
    ) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        received = 0
        for line in lines:
            if line.startswith("data: "):
                received += 1
                if received == 5:
                    os.kill(pid, signal.SIGKILL)
                    break
        rest = [line[6:] for line in lines if line.startswith("data: ")]
    errors = [json.loads(x)["error"] for x in rest if x.startswith('{"error"')]
    assert errors and errors[0]["code"] == "engine_unavailable"
    assert rest[-1] == "[DONE]"
    # The next request restarts the worker; the other model kept its worker.
    r = httpx.post(f"{server.v1}/completions", json=long_completion(max_tokens=3), timeout=60)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3
    assert server.worker_pid(SMOL) != pid
    assert server.worker_pid(QWEN) == qwen_pid
    r = httpx.post(f"{server.v1}/completions", json=long_completion(QWEN, max_tokens=2), timeout=60)
    assert r.status_code == 200


def test_worker_killed_before_the_answer_is_a_503(server: RealServer) -> None:
    httpx.post(f"{server.v1}/completions", json=long_completion(max_tokens=2), timeout=60)
    pid = server.worker_pid(SMOL)
    result: dict[str, httpx.Response] = {}

    def ask() -> None:
        result["r"] = httpx.post(f"{server.v1}/completions", json=long_completion(), timeout=60)

    thread = threading.Thread(target=ask)
    thread.start()
    server.wait_for(lambda: busy(server) >= 1, 20, "the generation to start")
    os.kill(pid, signal.SIGKILL)
    thread.join(30)
    r = result["r"]
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "engine_unavailable"
    assert r.json()["error"]["type"] == "server_error"


def test_client_leaving_mid_stream_frees_the_slot_at_once(tight_server: RealServer) -> None:
    server = tight_server
    with httpx.stream(
        "POST", f"{server.v1}/completions", json=long_completion(stream=True), timeout=30
    ) as r:
        lines = r.iter_lines()  # kept referenced: dropping it would close the connection early
        for _ in range(6):
            next(lines)
        assert server.model(SMOL)["running"] == 1  # type: ignore[index]
        assert busy(server) == 1
    # Closing the connection stops the generation in the engine and frees our slot.
    server.wait_for(
        lambda: busy(server) == 0 and server.model(SMOL)["running"] == 0,  # type: ignore[index]
        8,  # far less than the 1500 tokens would take (17 s or more): stopped, not finished
        "the slot to be freed",
    )
    r = httpx.post(f"{server.v1}/completions", json=long_completion(max_tokens=3), timeout=10)
    assert r.status_code == 200


def test_client_leaving_a_non_streamed_request_stops_it(tight_server: RealServer) -> None:
    server = tight_server
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.v1}/completions", json=long_completion(), timeout=1.5)
    server.wait_for(lambda: busy(server) == 0, 8, "the slot to be freed")  # not 1500 tokens


def test_full_queue_is_429_with_retry_after(tight_server: RealServer) -> None:
    server = tight_server
    # One slot and a queue of one: the first runs, the second waits, the third is refused.
    with httpx.stream(
        "POST", f"{server.v1}/completions", json=long_completion(stream=True), timeout=30
    ) as first:
        first_lines = first.iter_lines()
        next(first_lines)
        waiting = threading.Thread(
            target=httpx.post,
            args=(f"{server.v1}/completions",),
            kwargs={"json": long_completion(max_tokens=2), "timeout": 30},
        )
        waiting.start()
        server.wait_for(lambda: server.model(SMOL)["queued"] == 1, 5, "one request queued")  # type: ignore[index]
        r = httpx.post(
            f"{server.v1}/chat/completions",
            json={"model": SMOL, "messages": [{"role": "user", "content": "hi"}]},
        )
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == "server_busy"
        assert r.json()["error"]["type"] == "rate_limit_error"
    waiting.join(30)
    assert not waiting.is_alive()


def test_generation_past_the_request_timeout_is_stopped(tight_server: RealServer) -> None:
    server = tight_server  # IAFORALL_REQUEST_TIMEOUT=6
    with httpx.stream(
        "POST",
        f"{server.v1}/completions",
        json=long_completion(max_tokens=1900, stream=True),
        timeout=30,
    ) as r:
        frames = sse_frames(r)
    assert frames[-1] == "[DONE]"
    assert frames[-2]["error"]["code"] == "timeout"
    server.wait_for(lambda: busy(server) == 0, 8, "the slot to be freed")  # not 1500 tokens
