"""The OpenAI adapter on the scriptable fake engine: shapes, streaming, errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from iaforall.core.errors import EngineUnavailable
from tests.conftest import FakeWorld

CHAT = "/v1/chat/completions"


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], **extra}


def sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]


async def test_models_list_and_get(fake: FakeWorld) -> None:
    listed = (await fake.client.get("/v1/models")).json()
    assert listed["object"] == "list"
    # The store's models first, each saying what it does; speech and embedding models, when
    # installed, come after them; the OCR runtime, which no API calls, is not listed.
    kinds = [(m["id"], m["iaforall"]["kind"]) for m in listed["data"]]
    assert kinds[:2] == [("other:latest", "chat"), ("tiny:latest", "chat")]
    assert {kind for _, kind in kinds} <= {"chat", "speech_to_text", "text_to_speech", "embeddings"}
    assert ("use:multilingual", "embeddings") in kinds
    one = (await fake.client.get("/v1/models/tiny:latest")).json()
    assert one["object"] == "model" and one["owned_by"] == "iaforall"
    assert isinstance(one["created"], int) and one["iaforall"]["kind"] == "chat"
    assert (await fake.client.get("/v1/models/rapidocr")).status_code == 404


async def test_chat_answer_and_usage(fake: FakeWorld) -> None:
    r = await fake.client.post(CHAT, json=chat())
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "hi"
    fake.engine("tiny:latest").enqueue("Bon", "jour")
    r = await fake.client.post(CHAT, json=chat())
    assert r.json()["choices"][0]["message"]["content"] == "Bonjour"
    assert r.json()["usage"]["completion_tokens"] == 2


async def test_stream_frames_end_with_done_and_usage_only_when_asked(fake: FakeWorld) -> None:
    r = await fake.client.post(CHAT, json=chat(stream=True))
    assert r.headers["content-type"].startswith("text/event-stream")
    frames = sse_data(r.text)
    assert frames[-1] == "[DONE]"
    assert all("usage" not in json.loads(f) for f in frames[:-1])
    r = await fake.client.post(CHAT, json=chat(stream=True, stream_options={"include_usage": True}))
    frames = sse_data(r.text)
    last = json.loads(frames[-2])
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 1


async def test_error_before_stream_is_a_503_in_openai_shape(fake: FakeWorld) -> None:
    await fake.client.post(CHAT, json=chat())  # loads the engine
    fake.engine("tiny:latest").enqueue(EngineUnavailable("worker died"))
    r = await fake.client.post(CHAT, json=chat(stream=True))
    assert r.status_code == 503
    assert r.json()["error"] == {
        "message": "worker died",
        "type": "server_error",
        "param": None,
        "code": "engine_unavailable",
    }


async def test_error_mid_stream_is_an_error_event_then_done(fake: FakeWorld) -> None:
    await fake.client.post(CHAT, json=chat())
    fake.engine("tiny:latest").enqueue("Hel", EngineUnavailable("worker died"))
    r = await fake.client.post(CHAT, json=chat(stream=True))
    assert r.status_code == 200
    frames = sse_data(r.text)
    assert json.loads(frames[0])["choices"][0]["delta"]["content"] == "Hel"
    assert json.loads(frames[1])["error"]["code"] == "engine_unavailable"
    assert frames[2] == "[DONE]"


async def test_crashed_engine_restarts_on_next_request(fake: FakeWorld) -> None:
    await fake.client.post(CHAT, json=chat())
    engine = fake.engine("tiny:latest")
    engine.crash()
    r = await fake.client.post(CHAT, json=chat())
    assert r.status_code == 200 and engine.starts == 2


async def test_other_models_are_unaffected_by_a_crash(fake: FakeWorld) -> None:
    await fake.client.post(CHAT, json=chat())
    await fake.client.post(CHAT, json=chat(model="other"))
    fake.engine("tiny:latest").crash()
    assert (await fake.client.post(CHAT, json=chat(model="other"))).status_code == 200
    assert fake.engine("other:latest").starts == 1


async def test_return_prompt_shows_exactly_what_was_sent(fake: FakeWorld) -> None:
    body = chat(iaforall={"return_prompt": True})
    r = await fake.client.post(CHAT, json=body)
    assert r.json()["iaforall"]["prompt"] == "<user>hi\n"
    r = await fake.client.post("/v1/chat/prompt", json=chat())
    assert r.json() == {
        "object": "chat.prompt",
        "model": "tiny:latest",
        "prompt": "<user>hi\n",
        "builtin_system_prompt": {"text": None, "used": False},
    }
    r = await fake.client.post(CHAT, json={**body, "stream": True})
    assert json.loads(sse_data(r.text)[0])["iaforall"]["prompt"] == "<user>hi\n"


async def test_content_parts_are_joined_and_developer_is_system(fake: FakeWorld) -> None:
    messages = [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]
    await fake.client.post(CHAT, json=chat(messages=messages))
    sent = fake.engine("tiny:latest").requests[-1]
    assert sent.messages == (
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "ab"},
    )


async def test_sampling_reaches_the_engine(fake: FakeWorld) -> None:
    await fake.client.post(
        CHAT,
        json=chat(temperature=0.2, top_p=0.5, max_completion_tokens=7, stop="x", seed=3),
    )
    s = fake.engine("tiny:latest").requests[-1].sampling
    assert (s.temperature, s.top_p, s.max_tokens, s.stop, s.seed) == (0.2, 0.5, 7, ("x",), 3)


async def test_completions_ids_and_stream(fake: FakeWorld) -> None:
    r = await fake.client.post("/v1/completions", json={"model": "tiny", "prompt": "abc"})
    assert r.status_code == 200
    r = await fake.client.post(
        "/v1/completions", json={"model": "tiny", "prompt": ["abc"], "stream": True}
    )
    assert sse_data(r.text)[-1] == "[DONE]"


async def test_client_that_leaves_mid_stream_frees_its_slot(fake: FakeWorld) -> None:
    fake.delay = 0.05
    await fake.client.post(CHAT, json=chat())  # build the engine with this delay
    engine = fake.engine("tiny:latest")
    engine.enqueue(*["tok "] * 200)
    async with fake.client.stream("POST", CHAT, json=chat(stream=True)) as r:
        async for _ in r.aiter_bytes():
            break
    for _ in range(100):
        if engine.active == 0:
            break
        await asyncio.sleep(0.01)
    assert engine.active == 0 and engine.cancelled == 1
    # The one slot is free again: a new request is served, not queued forever.
    r = await asyncio.wait_for(fake.client.post(CHAT, json=chat()), 2)
    assert r.status_code == 200
    metrics = (await fake.client.get("/metrics")).text
    assert 'kind="chat",model="tiny:latest",outcome="cancelled"} 1.0' in metrics


async def test_full_queue_answers_429_with_retry_after(fake: FakeWorld) -> None:
    fake.delay = 0.05
    await fake.client.post(CHAT, json=chat())
    fake.engine("tiny:latest").enqueue(*["t"] * 40)
    running = asyncio.create_task(fake.client.post(CHAT, json=chat()))
    queued = [asyncio.create_task(fake.client.post(CHAT, json=chat())) for _ in range(2)]
    for _ in range(200):  # until one runs and two wait (the queue holds two)
        if (await fake.client.get("/health")).json()["queue_length"] == 2:
            break
        await asyncio.sleep(0.01)
    r = await fake.client.post(CHAT, json=chat())
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "server_busy"
    for task in (running, *queued):
        assert (await task).status_code == 200


async def test_health_and_metrics(fake: FakeWorld) -> None:
    await fake.client.post(CHAT, json=chat())
    health = (await fake.client.get("/health")).json()
    assert health["status"] == "ok"
    assert health["models"][0]["name"] == "tiny:latest"
    assert health["models"][0]["state"] == "ready"
    text = (await fake.client.get("/metrics")).text
    assert 'iaforall_tokens_total{kind="completion",model="tiny:latest"} 1.0' in text
    assert "iaforall_queue_wait_seconds_bucket" in text
    assert 'iaforall_requests_total{kind="chat",model="tiny:latest",outcome="ok"} 1.0' in text
