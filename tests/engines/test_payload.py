"""Core requests -> llama.cpp bodies: nothing hidden added, every setting passed on."""

from __future__ import annotations

from iaforall.core.types import ChatRequest, CompletionRequest, ModelId, Sampling
from iaforall.engines.llamacpp.payload import request_path_and_body

USER = {"role": "user", "content": "hi"}


def test_an_empty_system_message_replaces_the_templates_hidden_one() -> None:
    chat = ChatRequest(model=ModelId("m"), messages=(USER,))
    _, body = request_path_and_body(chat, stream=False, template_default_system=False)
    assert body["messages"] == [{"role": "system", "content": ""}, USER]
    _, body = request_path_and_body(chat, stream=False, template_default_system=True)
    assert body["messages"] == [USER]


def test_a_users_system_message_is_kept_as_is() -> None:
    system = {"role": "system", "content": "Sois bref."}
    chat = ChatRequest(model=ModelId("m"), messages=(system, USER))
    _, body = request_path_and_body(chat, stream=False, template_default_system=False)
    assert body["messages"] == [system, USER]


def test_streams_always_ask_for_usage_and_sampling_is_passed() -> None:
    sampling = Sampling(
        temperature=0.1, max_tokens=5, stop=("x",), seed=7, logprobs=True, top_logprobs=3
    )
    path, body = request_path_and_body(
        CompletionRequest(model=ModelId("m"), prompt="p", sampling=sampling),
        stream=True,
        template_default_system=False,
    )
    assert path == "/v1/completions"
    assert body == {
        "prompt": "p",
        "temperature": 0.1,
        "max_tokens": 5,
        "seed": 7,
        "stop": ["x"],
        "logprobs": True,
        "top_logprobs": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
