"""The Ollama adapter on the scriptable fake engine: shapes, streaming, options, errors."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from PIL import Image, ImageDraw

from iaforall.core.errors import EngineUnavailable
from iaforall.core.types import ChatRequest, CompletionRequest
from tests.conftest import FakeWorld

TIMINGS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], **extra}


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


async def test_version_and_liveness(fake: FakeWorld) -> None:
    r = await fake.client.get("/api/version")
    assert r.status_code == 200 and r.json()["version"]
    root = await fake.client.get("/")
    assert root.status_code == 200 and "running" in root.text
    assert (await fake.client.head("/")).status_code == 200


async def test_tags_list_the_store_with_digests(fake: FakeWorld) -> None:
    models = (await fake.client.get("/api/tags")).json()["models"]
    assert [m["name"] for m in models] == ["other:latest", "tiny:latest"]
    tiny = models[1]
    assert len(tiny["digest"]) == 64 and tiny["size"] > 0
    assert tiny["details"]["format"] == "gguf" and tiny["modified_at"].endswith("Z")


async def test_show_gives_details_and_metadata(fake: FakeWorld) -> None:
    r = await fake.client.post("/api/show", json={"model": "tiny"})
    assert r.status_code == 200
    shown = r.json()
    assert shown["details"]["format"] == "gguf"
    assert "completion" in shown["capabilities"]
    assert shown["model_info"]["general.architecture"] == shown["details"]["family"]
    assert "FROM " in shown["modelfile"] and shown["modelfile"].rstrip().endswith(".gguf")
    missing = await fake.client.post("/api/show", json={"model": "nope"})
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


async def test_chat_streams_ndjson_with_a_done_line(fake: FakeWorld) -> None:
    await fake.client.post("/api/chat", json=chat(stream=False))  # loads the engine
    fake.engine("tiny:latest").enqueue("Bon", "jour")
    r = await fake.client.post("/api/chat", json=chat())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    got = lines(r.text)
    assert [g["message"]["content"] for g in got[:-1]] == ["Bon", "jour"]
    assert all(g["done"] is False and g["model"] == "tiny" for g in got[:-1])
    last = got[-1]
    assert last["done"] is True and last["done_reason"] == "stop"
    assert all(isinstance(last[k], int) for k in TIMINGS)
    assert last["eval_count"] == 2 and last["prompt_eval_count"] == 1
    assert last["load_duration"] == 0  # the model was already loaded
    assert last["total_duration"] >= last["eval_duration"]


async def test_chat_whole_answer_when_not_streamed(fake: FakeWorld) -> None:
    r = await fake.client.post("/api/chat", json=chat(stream=False))
    assert r.status_code == 200 and r.headers["x-iaforall-queue-position"] == "0"
    answer = r.json()
    assert answer["message"] == {"role": "assistant", "content": "hi"}
    assert answer["done"] is True and answer["done_reason"] == "stop"
    assert all(k in answer for k in TIMINGS)


async def test_options_format_and_system_reach_the_engine(fake: FakeWorld) -> None:
    options = {
        "temperature": 0.2,
        "top_k": 5,
        "top_p": 0.9,
        "seed": 7,
        "num_predict": 12,
        "stop": ["\n"],
        "repeat_penalty": 1.1,
        "num_ctx": 4096,
        "num_thread": 2,
        "num_gqa": 8,  # unknown (an old Modelfile parameter): ignored, as Ollama does
        "é\nX-Evil: 1": 0,
    }
    body = chat(stream=False, options=options, format="json")
    r = await fake.client.post("/api/chat", json=body)
    assert r.status_code == 200
    assert r.headers["x-iaforall-ignored-options"] == "??X-Evil??1,num_ctx,num_gqa,num_thread"
    assert "x-evil" not in r.headers
    sent = fake.engine("tiny:latest").requests[-1]
    assert isinstance(sent, ChatRequest)
    s = sent.sampling
    assert (s.temperature, s.top_k, s.top_p, s.seed) == (0.2, 5, 0.9, 7)
    assert (s.max_tokens, s.stop, s.repeat_penalty) == (12, ("\n",), 1.1)
    assert sent.response_format == {"type": "json_object"}
    # more than the context holds: until the context is full, as Ollama does
    r = await fake.client.post("/api/chat", json=chat(options={"num_predict": 100_000}))
    assert r.status_code == 200
    assert fake.engine("tiny:latest").requests[-1].sampling.max_tokens == 2048
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    r = await fake.client.post(
        "/api/generate",
        json={"model": "tiny", "prompt": "p", "system": "be brief", "format": schema},
    )
    assert r.status_code == 200
    sent = fake.engine("tiny:latest").requests[-1]
    assert isinstance(sent, ChatRequest)
    assert [m["role"] for m in sent.messages] == ["system", "user"]
    assert sent.response_format is not None
    assert sent.response_format["json_schema"]["schema"] == schema


async def test_generate_raw_is_a_plain_completion(fake: FakeWorld) -> None:
    r = await fake.client.post(
        "/api/generate", json={"model": "tiny", "prompt": "1, 2,", "raw": True, "stream": False}
    )
    assert r.status_code == 200
    assert r.json()["response"] == "1, 2," and r.json()["done"] is True
    sent = fake.engine("tiny:latest").requests[-1]
    assert isinstance(sent, CompletionRequest) and sent.prompt == "1, 2,"
    streamed = lines(
        (await fake.client.post("/api/generate", json={"model": "tiny", "prompt": "x"})).text
    )
    assert streamed[0]["response"] == "x" and streamed[-1]["done"] is True


async def test_unsupported_parameters_are_refused_clearly(fake: FakeWorld) -> None:
    cases = [
        ({"model": "tiny", "prompt": "p", "template": "{{ .Prompt }}"}, "template"),
        ({"model": "tiny", "prompt": "p", "suffix": "end"}, "suffix"),
        ({"model": "tiny", "prompt": "p", "context": [1, 2]}, "context"),
        ({"model": "tiny", "prompt": "p", "raw": True, "system": "s"}, "raw"),
        ({"model": "tiny", "prompt": "p", "think": True}, "thinking"),
        ({"model": "tiny", "prompt": "p", "options": {"mirostat": 2}}, "mirostat"),
        ({"model": "tiny", "prompt": "p", "options": {"num_predict": 0}}, "num_predict"),
        ({"model": "tiny", "prompt": "p", "format": "yaml"}, "format"),
        ({"model": "tiny", "prompt": "p", "keep_alive": "soon"}, "keep_alive"),
        ({"model": "tiny", "prompt": "p", "format": {"type": 3}}, "schema"),
    ]
    for body, word in cases:
        r = await fake.client.post("/api/generate", json=body)
        assert r.status_code == 400, body
        assert set(r.json()) >= {"error"} and word in r.json()["error"], r.json()


async def test_errors_are_ollama_shaped(fake: FakeWorld) -> None:
    r = await fake.client.post("/api/chat", json=chat(model="nope"))
    assert (
        r.status_code == 404 and list(r.json()) == ["error", "code"] and "nope" in r.json()["error"]
    )
    r = await fake.client.post("/api/chat", content=b"{not json")
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    r = await fake.client.post("/api/chat", json={"messages": []})
    assert r.status_code == 400 and "model" in r.json()["error"]
    r = await fake.client.get("/api/nothing-here")
    assert r.status_code == 404 and "error" in r.json()
    # /v1 keeps OpenAI's shape
    r = await fake.client.post("/v1/chat/completions", json=chat(model="nope"))
    assert r.json()["error"]["code"] == "model_not_found"


async def test_error_mid_stream_is_a_last_error_line(fake: FakeWorld) -> None:
    await fake.client.post("/api/chat", json=chat(stream=False))
    fake.engine("tiny:latest").enqueue("partial", EngineUnavailable("worker died"))
    r = await fake.client.post("/api/chat", json=chat())
    assert r.status_code == 200
    got = lines(r.text)
    assert got[0]["message"]["content"] == "partial"
    assert got[-1] == {"error": "worker died", "code": "engine_unavailable"}
    fake.engine("tiny:latest").enqueue(EngineUnavailable("worker died"))
    r = await fake.client.post("/api/chat", json=chat())
    assert r.status_code == 503 and r.json() == {
        "error": "worker died",
        "code": "engine_unavailable",
    }


async def test_empty_request_loads_and_keep_alive_zero_unloads(fake: FakeWorld) -> None:
    r = await fake.client.post("/api/generate", json={"model": "tiny"})
    assert r.json()["done_reason"] == "load" and r.json()["done"] is True
    ps = (await fake.client.get("/api/ps")).json()["models"]
    assert [m["name"] for m in ps] == ["tiny:latest"]
    assert ps[0]["expires_at"].endswith("Z") and ps[0]["size_vram"] == 0
    r = await fake.client.post("/api/chat", json={"model": "tiny", "messages": [], "keep_alive": 0})
    assert r.json()["done_reason"] == "unload" and r.json()["message"]["content"] == ""
    assert (await fake.client.get("/api/ps")).json()["models"] == []
    # an answer with keep_alive 0 unloads once it is done
    r = await fake.client.post("/api/chat", json=chat(keep_alive="0s", stream=False))
    assert r.status_code == 200 and r.json()["message"]["content"] == "hi"
    assert (await fake.client.get("/api/ps")).json()["models"] == []
    await fake.client.post("/api/chat", json=chat(keep_alive="5m"))
    assert len((await fake.client.get("/api/ps")).json()["models"]) == 1


async def test_tool_calls_map_both_ways(fake: FakeWorld) -> None:
    await fake.client.post("/api/chat", json=chat(stream=False))
    tool = {
        "type": "function",
        "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}},
    }
    history = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Lyon"}}}],
        },
        {"role": "tool", "content": "sunny", "tool_name": "weather"},
    ]
    r = await fake.client.post(
        "/api/chat", json={"model": "tiny", "messages": history, "tools": [tool], "stream": False}
    )
    assert r.status_code == 200
    sent = fake.engine("tiny:latest").requests[-1]
    assert isinstance(sent, ChatRequest) and sent.tools[0]["function"]["name"] == "weather"
    call = sent.messages[1]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"city": "Lyon"}
    assert sent.messages[2]["tool_call_id"] == call["id"]


async def test_images_are_read_by_ocr_for_a_text_model(fake: FakeWorld) -> None:
    image = Image.new("RGB", (40, 20), "white")
    ImageDraw.Draw(image).rectangle((5, 5, 10, 10), fill="black")
    out = io.BytesIO()
    image.save(out, "JPEG")
    b64 = base64.b64encode(out.getvalue()).decode()
    r = await fake.client.post(
        "/api/generate", json={"model": "tiny", "prompt": "what?", "images": [b64], "stream": False}
    )
    assert r.status_code == 200, r.text
    sent = fake.engine("tiny:latest").requests[-1]
    assert isinstance(sent, ChatRequest)
    content = sent.messages[-1]["content"]
    assert isinstance(content, str) and "what?" in content and "[Image 1" in content
    bad = await fake.client.post(
        "/api/generate", json={"model": "tiny", "prompt": "?", "images": ["bm90IGFuIGltYWdl"]}
    )
    assert bad.status_code == 400 and "error" in bad.json()


async def test_embed_and_legacy_embeddings(fake: FakeWorld) -> None:
    r = await fake.client.post("/api/embed", json={"input": ["un", "deux"]})
    if r.status_code == 404:  # the built-in encoder is not installed here
        return
    assert r.status_code == 200, r.text
    got = r.json()
    assert len(got["embeddings"]) == 2 and got["prompt_eval_count"] > 0
    one = (await fake.client.post("/api/embeddings", json={"prompt": "un"})).json()
    assert len(one["embedding"]) == len(got["embeddings"][0])
    r = await fake.client.post("/api/embed", json={})
    assert r.status_code == 400 and "input" in r.json()["error"]


async def test_copy_then_delete_the_copy(fake: FakeWorld) -> None:
    r = await fake.client.post("/api/copy", json={"source": "tiny", "destination": "mine:v1"})
    assert r.status_code == 200
    names = [m["name"] for m in (await fake.client.get("/api/tags")).json()["models"]]
    assert "mine:v1" in names and "tiny:latest" in names
    r = await fake.client.post("/api/chat", json=chat(model="mine:v1", stream=False))
    assert r.status_code == 200 and r.json()["model"] == "mine:v1"
    r = await fake.client.request("DELETE", "/api/delete", json={"model": "mine:v1"})
    assert r.status_code == 200
    names = [m["name"] for m in (await fake.client.get("/api/tags")).json()["models"]]
    assert "mine:v1" not in names and "tiny:latest" in names
    r = await fake.client.request("DELETE", "/api/delete", json={"model": "mine:v1"})
    assert r.status_code == 404 and "error" in r.json()
    r = await fake.client.post("/api/copy", json={"source": "nope", "destination": "x"})
    assert r.status_code == 404
    r = await fake.client.post("/api/copy", json={"source": "tiny", "destination": "../../etc"})
    assert r.status_code == 400 and "not a valid model name" in r.json()["error"]


async def test_pull_of_an_unknown_name_is_a_clear_404(fake: FakeWorld) -> None:
    r = await fake.client.post("/api/pull", json={"model": "no-such-model"})
    assert r.status_code == 404 and "error" in r.json()
