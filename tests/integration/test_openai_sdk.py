"""The official `openai` SDK, unchanged, against the real server and the real smollm2:135m."""

from __future__ import annotations

import time

import openai
import pytest

from iaforall.models.packaged import PACKAGED
from tests.real_server import SMOL, RealServer

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]


@pytest.fixture
def client(server: RealServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)


@pytest.fixture
def aclient(server: RealServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.v1, api_key="unused", max_retries=0)


def test_chat_answer_has_openai_shape(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=16)
    assert answer.id.startswith("chatcmpl-")
    assert answer.object == "chat.completion"
    assert answer.model == SMOL
    assert abs(answer.created - time.time()) < 120
    choice = answer.choices[0]
    assert choice.index == 0 and choice.finish_reason in ("stop", "length")
    assert choice.message.role == "assistant" and choice.message.content
    usage = answer.usage
    assert usage is not None and usage.completion_tokens > 0 and usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=SMOL,
        messages=HELLO,
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert 0 < chunks[-1].usage.completion_tokens <= 16


def test_chat_stream_without_usage_sends_none(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=8, stream=True)
    )
    assert all(c.usage is None for c in chunks)


async def test_async_client_stream_and_answer(aclient: openai.AsyncOpenAI) -> None:
    answer = await aclient.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=8)
    assert answer.choices[0].message.content
    stream = await aclient.chat.completions.create(
        model=SMOL, messages=HELLO, max_tokens=8, stream=True
    )
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(parts).strip()


def test_completions_plain_and_streamed(client: openai.OpenAI) -> None:
    done = client.completions.create(model=SMOL, prompt="The capital of France is", max_tokens=4)
    assert done.id.startswith("cmpl-") and done.object == "text_completion"
    assert done.choices[0].text and done.usage is not None
    chunks = list(
        client.completions.create(
            model=SMOL, prompt="The capital of France is", max_tokens=4, stream=True
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices).strip()
    assert all(c.id.startswith("cmpl-") for c in chunks)


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert SMOL in ids
    assert client.models.retrieve(SMOL).id == SMOL
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("no-such-model:7b")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-model:7b", messages=HELLO)
    assert missing.value.code == "model_not_found"


def test_seed_makes_sampling_repeatable(client: openai.OpenAI) -> None:
    def sample() -> str | None:
        answer = client.chat.completions.create(
            model=SMOL, messages=HELLO, max_tokens=20, temperature=1.0, seed=1234
        )
        return answer.choices[0].message.content

    # The first run fills the prompt cache; the next two take the same path through it (a
    # cached prefix is evaluated in a different batch shape, which may shift logits slightly).
    sample()
    assert sample() == sample()


def test_stop_sequence_ends_the_answer(client: openai.OpenAI) -> None:
    answer = client.completions.create(
        model=SMOL, prompt="1, 2, 3, 4,", max_tokens=40, temperature=0, stop=[" 7"]
    )
    assert answer.choices[0].finish_reason == "stop"
    assert " 7" not in answer.choices[0].text and "6" in answer.choices[0].text


def test_max_tokens_and_max_completion_tokens(client: openai.OpenAI) -> None:
    story = [{"role": "user", "content": "Write a long story about a cat."}]
    old = client.chat.completions.create(model=SMOL, messages=story, max_tokens=3, temperature=0)
    new = client.chat.completions.create(
        model=SMOL, messages=story, max_completion_tokens=3, temperature=0
    )
    for answer in (old, new):
        assert answer.usage is not None and answer.usage.completion_tokens == 3
        assert answer.choices[0].finish_reason == "length"


def test_logprobs(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=SMOL, messages=HELLO, max_tokens=4, logprobs=True, top_logprobs=2
    )
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    first = logprobs.content[0]
    assert first.logprob <= 0 and len(first.top_logprobs) == 2


def test_no_hidden_prompt(client: openai.OpenAI) -> None:
    """What the model saw is returned: the template's built-in prompt exactly when it is
    used for this model (see tests/integration/test_builtin_prompt.py), and the user's own."""
    raw = client.chat.completions.with_raw_response.create(
        model=SMOL, messages=HELLO, max_tokens=2, extra_body={"iaforall": {"return_prompt": True}}
    )
    prompt = raw.http_response.json()["iaforall"]["prompt"]
    assert ("SmolLM" in prompt) is PACKAGED[SMOL].builtin_system_prompt
    assert "Say hello in one short sentence." in prompt
    mine = [{"role": "system", "content": "Tu es un assistant."}, *HELLO]
    raw = client.chat.completions.with_raw_response.create(
        model=SMOL, messages=mine, max_tokens=2, extra_body={"iaforall": {"return_prompt": True}}
    )
    assert "Tu es un assistant." in raw.http_response.json()["iaforall"]["prompt"]


def test_prompt_endpoint(server: RealServer) -> None:
    import httpx

    r = httpx.post(f"{server.v1}/chat/prompt", json={"model": SMOL, "messages": HELLO})
    assert r.status_code == 200
    assert r.json()["prompt"].endswith("<|im_start|>assistant\n")


def test_tool_and_assistant_history_roles_are_accepted(client: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]
    answer = client.chat.completions.create(model=SMOL, messages=messages, max_tokens=4)  # type: ignore[arg-type]
    assert answer.choices[0].message.content is not None
