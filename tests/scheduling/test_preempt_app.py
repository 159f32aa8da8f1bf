"""Preemption applied by the loop and the dispatcher, over real HTTP on the fake engine with
accounts on and one slot: bob's long answer is paused when ada asks, ada is served, and bob's
answer resumes where it stopped; with IAFORALL_PREEMPT off, ada waits for bob's answer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from iaforall.settings import SchedulingSettings
from tests.people.conftest import settings_with_accounts, shared_server
from tests.people.test_quotas_and_rules import key_for

PIECES = [f"{n} " for n in range(60)]


def chat(text: str, **extra: object) -> dict[str, object]:
    return {"model": "tiny", "messages": [{"role": "user", "content": text}], **extra}


@pytest.mark.parametrize("preempt", [True, False], ids=["preempt", "off"])
async def test_a_newcomer_pauses_a_long_answer_which_resumes_where_it_stopped(
    tmp_path: Path, preempt: bool
) -> None:
    settings = settings_with_accounts(tmp_path)
    scheduling = SchedulingSettings(max_queue=4, queue_timeout=5, preempt=preempt)
    async with shared_server(tmp_path, settings.model_copy(update={"scheduling": scheduling})) as w:
        bob, ada = await key_for(w, "bob"), await key_for(w, "ada")
        warm = await w.client.post("/v1/chat/completions", json=chat("hi"), headers=bob)
        assert warm.status_code == 200
        engine = w.engine("tiny:latest")
        engine.can_pause = True
        engine.delay = 0.01
        engine.enqueue(*PIECES)
        sent: list[str] = []
        lines: list[str] = []

        async def bob_asks() -> None:
            async with w.client.stream(
                "POST", "/v1/chat/completions", json=chat("count", stream=True), headers=bob
            ) as response:
                async for line in response.aiter_lines():
                    lines.append(line)
                    if line.startswith("data: {"):
                        for choice in json.loads(line[6:])["choices"]:
                            sent.append(choice["delta"].get("content") or "")

        bob_task = asyncio.create_task(bob_asks())
        for _ in range(1000):
            if len(sent) >= 20:
                break
            await asyncio.sleep(0.005)
        engine.enqueue("hello")
        answered = await w.client.post("/v1/chat/completions", json=chat("hi"), headers=ada)
        assert answered.json()["choices"][0]["message"]["content"] == "hello"
        sent_when_ada_was_served = len([s for s in sent if s])
        await asyncio.wait_for(bob_task, 10)

    assert "".join(sent) == "".join(PIECES)  # the same answer, paused or not
    paused = [line for line in lines if line.startswith(": queue") and line.endswith(" paused")]
    if preempt:
        assert sent_when_ada_was_served < len(PIECES)  # ada went in the middle of bob's answer
        assert paused
        assert len(engine.resumed) == 1 and 16 <= engine.resumed[0] < len(PIECES)
    else:
        assert sent_when_ada_was_served == len(PIECES)  # ada waited for bob's whole answer
        assert not paused and not engine.resumed
