"""The web app's conversations on the real server and the real smollm2: an answer is stored,
a stopped one keeps what was written and frees the engine at once."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.real_server import SMOL, RealServer

API = "/web/api/conversations"


def _busy(server: RealServer) -> int:
    model = server.model(SMOL)
    return int(model["busy_slots"] or 0) if model else 0


def _create(server: RealServer, **fields: Any) -> str:
    created = httpx.post(f"{server.url}{API}", json={"model": SMOL, **fields}, timeout=10)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_an_answer_is_streamed_then_stored(server: RealServer) -> None:
    cid = _create(server, settings={"max_tokens": 8, "temperature": 0})
    with httpx.stream(
        "POST", f"{server.url}{API}/{cid}/reply", json={"content": "Say hello."}, timeout=60
    ) as r:
        assert r.status_code == 200
        body = "".join(r.iter_text())
    done = [b for b in body.split("\n\n") if b.startswith("event: done")]
    assert done and body.rstrip().endswith("data: [DONE]")
    answer = json.loads(done[0].split("data: ", 1)[1])["message"]
    assert answer["status"] == "complete" and answer["content"].strip()
    assert answer["usage"]["completion_tokens"] <= 8
    stored = httpx.get(f"{server.url}{API}/{cid}", timeout=10).json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"]
    assert stored["messages"][1]["content"] == answer["content"]
    prompt = httpx.post(f"{server.url}{API}/{cid}/prompt", json={"draft": "Next"}, timeout=30)
    text = prompt.json()["prompt"]
    # The real template: our empty system turn, the stored turns, the draft; nothing else.
    assert text.index("Say hello.") < text.index(answer["content"].strip()) < text.index("Next")


def test_stopping_an_answer_stores_it_and_frees_the_engine(server: RealServer) -> None:
    cid = _create(server, settings={"max_tokens": 1500, "temperature": 0})
    content = "Count from 1 to 1000, separated by commas."
    with httpx.stream(
        "POST", f"{server.url}{API}/{cid}/reply", json={"content": content}, timeout=60
    ) as r:
        frames = r.iter_lines()  # kept referenced: dropping it would close the connection early
        received = 0
        for line in frames:
            received += line.startswith("data: ")
            if received == 12:
                break
        assert _busy(server) == 1
    server.wait_for(lambda: _busy(server) == 0, 10, "the stopped answer to free its slot")

    def stored() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = httpx.get(f"{server.url}{API}/{cid}").json()["messages"]
        return messages

    server.wait_for(lambda: len(stored()) == 2, 10, "the stopped answer to be stored")
    answer = stored()[1]
    assert answer["status"] == "stopped" and answer["content"]
