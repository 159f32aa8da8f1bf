"""The web app's API over real HTTP, on the fake engine: conversations, replies, export."""

from __future__ import annotations

from typing import Any

import httpx

from iaforall.core.errors import EngineUnavailable
from iaforall.engines.protocol import BuiltinPrompt
from tests.conftest import FakeWorld
from tests.sse import events

API = "/web/api/conversations"


def streamed_text(found: list[tuple[str, Any]]) -> str:
    return "".join(
        d["choices"][0]["delta"].get("content", "")
        for name, d in found
        if name == "message" and isinstance(d, dict) and d.get("choices")
    )


async def new_conversation(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post(API, json={"model": "tiny", **fields})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_reply_streams_and_both_messages_are_stored(fake: FakeWorld) -> None:
    conversation = await new_conversation(fake.client, settings={"temperature": 0.5})
    assert conversation["system_prompt"] == "" and conversation["messages"] == []
    response = await fake.client.post(
        f"{API}/{conversation['id']}/reply", json={"content": "Bonjour"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    found = events(response.text)
    assert found[0][0] == "start" and found[0][1]["user_message"]["content"] == "Bonjour"
    assert streamed_text(found) == "Bonjour"  # the fake engine echoes
    assert found[-2][0] == "done" and found[-1] == ("message", "[DONE]")
    answer = found[-2][1]["message"]
    assert answer["id"] == found[0][1]["assistant_message_id"]
    assert answer["status"] == "complete" and answer["content"] == "Bonjour"
    assert answer["usage"] == {"prompt_tokens": 1, "completion_tokens": 1}

    stored = (await fake.client.get(f"{API}/{conversation['id']}")).json()
    assert [(m["role"], m["content"]) for m in stored["messages"]] == [
        ("user", "Bonjour"),
        ("assistant", "Bonjour"),
    ]
    assert stored["title"] == "Bonjour"
    # What the engine was given: no system message (none was written), the conversation's
    # settings, and nothing else.
    request = fake.engine("tiny:latest").requests[-1]
    assert request.messages == ({"role": "user", "content": "Bonjour"},)
    assert request.sampling.temperature == 0.5


async def test_the_system_prompt_and_history_reach_the_model(fake: FakeWorld) -> None:
    conversation = await new_conversation(fake.client, system_prompt="Réponds en français.")
    cid = conversation["id"]
    await fake.client.post(f"{API}/{cid}/reply", json={"content": "one"})
    fake.engine("tiny:latest").enqueue("Deux", " !")
    await fake.client.post(f"{API}/{cid}/reply", json={"content": "two"})
    assert fake.engine("tiny:latest").requests[-1].messages == (
        {"role": "system", "content": "Réponds en français."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "two"},
    )
    prompt = await fake.client.post(f"{API}/{cid}/prompt", json={"draft": "three"})
    assert prompt.status_code == 200
    assert prompt.json() == {
        "model": "tiny:latest",
        "prompt": "<system>Réponds en français.\n<user>one\n<assistant>one\n<user>two\n"
        "<assistant>Deux !\n<user>three\n",
        "builtin_system_prompt": {"text": None, "used": False},
    }


async def test_regenerate_and_edit_replace_the_end_of_the_conversation(fake: FakeWorld) -> None:
    cid = (await new_conversation(fake.client))["id"]
    await fake.client.post(f"{API}/{cid}/reply", json={"content": "first"})
    fake.engine("tiny:latest").enqueue("another answer")
    response = await fake.client.post(f"{API}/{cid}/reply", json={"action": "regenerate"})
    assert events(response.text)[0][1]["user_message"] is None
    stored = (await fake.client.get(f"{API}/{cid}")).json()["messages"]
    assert [m["content"] for m in stored] == ["first", "another answer"]

    await fake.client.post(f"{API}/{cid}/reply", json={"action": "edit", "content": "edited"})
    stored = (await fake.client.get(f"{API}/{cid}")).json()["messages"]
    assert [m["content"] for m in stored] == ["edited", "edited"]


async def test_errors_before_the_answer_change_nothing(fake: FakeWorld) -> None:
    cid = (await new_conversation(fake.client))["id"]
    missing = await fake.client.post(
        f"{API}/{cid}/reply", json={"content": "hello", "model": "nope"}
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"
    await fake.client.post(f"{API}/{cid}/reply", json={"content": "hello"})
    fake.engine("tiny:latest").crash()  # the next start restarts it: make the start fail instead
    fake.engine("tiny:latest").enqueue(EngineUnavailable("the engine stopped"))
    failed = await fake.client.post(f"{API}/{cid}/reply", json={"content": "lost?"})
    assert failed.status_code == 503
    assert failed.json()["error"]["message"] == "the engine stopped"
    stored = (await fake.client.get(f"{API}/{cid}")).json()
    assert [m["content"] for m in stored["messages"]] == ["hello", "hello"]
    assert stored["model"] == "tiny"


async def test_an_engine_failure_mid_answer_is_stored_as_an_error(fake: FakeWorld) -> None:
    cid = (await new_conversation(fake.client))["id"]
    await fake.client.post(f"{API}/{cid}/reply", json={"content": "warm up"})
    crash = EngineUnavailable("The model's process crashed.")
    fake.engine("tiny:latest").enqueue("Half an ", crash)
    response = await fake.client.post(f"{API}/{cid}/reply", json={"content": "go"})
    found = events(response.text)
    assert streamed_text(found) == "Half an "
    errors = [d["error"] for _, d in found if isinstance(d, dict) and "error" in d]
    assert [(e["message"], e["code"]) for e in errors] == [(crash.message, "engine_unavailable")]
    saved = found[-2][1]["message"]
    assert (saved["status"], saved["content"]) == ("error", "Half an ")
    assert saved["error"] == "The model's process crashed."


async def test_a_stopped_answer_is_stored_with_what_was_written(fake: FakeWorld) -> None:
    cid = (await new_conversation(fake.client))["id"]
    await fake.client.post(f"{API}/{cid}/reply", json={"content": "warm up"})
    engine = fake.engine("tiny:latest")
    engine.delay = 0.05
    engine.enqueue(*(f"w{i} " for i in range(200)))
    async with fake.client.stream(
        "POST", f"{API}/{cid}/reply", json={"content": "long"}
    ) as response:
        seen = ""
        async for text in response.aiter_text():
            seen += text
            if seen.count("w") >= 3:
                break  # the user pressed Stop: the browser aborts the request
    for _ in range(200):
        messages = (await fake.client.get(f"{API}/{cid}")).json()["messages"]
        if len(messages) == 4:
            break
        await _tick()
    last = messages[-1]
    assert last["status"] == "stopped", last
    assert last["content"].startswith("w0 w1 ") and len(last["content"]) < 200 * 3
    assert engine.cancelled >= 1


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.02)


async def test_list_search_rename_delete(fake: FakeWorld) -> None:
    a = await new_conversation(fake.client, title="Cuisine")
    b = await new_conversation(fake.client)
    await fake.client.post(f"{API}/{b['id']}/reply", json={"content": "Parle-moi des crêpes"})
    listed = (await fake.client.get(API)).json()["data"]
    assert [c["id"] for c in listed][:2] == [b["id"], a["id"]]  # most recent first
    assert "messages" not in listed[0] and listed[0]["message_count"] == 2
    found = (await fake.client.get(API, params={"q": "CRÊPES"})).json()["data"]
    assert [c["id"] for c in found] == [b["id"]] and "crêpes" in found[0]["snippet"]

    renamed = await fake.client.patch(f"{API}/{a['id']}", json={"title": "Recettes"})
    assert renamed.json()["title"] == "Recettes"
    assert (await fake.client.delete(f"{API}/{a['id']}")).status_code == 204
    gone = await fake.client.get(f"{API}/{a['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert [c["id"] for c in (await fake.client.get(API)).json()["data"]] == [b["id"]]


async def test_a_null_in_a_change_leaves_the_field_as_it_is(fake: FakeWorld) -> None:
    """(a null system prompt was a 500, found by fuzzing); a null model means the default."""
    c = await new_conversation(fake.client, title="Cuisine", system_prompt="Sois bref.")
    nulls = {"title": None, "system_prompt": None, "knowledge": None, "model": None}
    changed = await fake.client.patch(f"{API}/{c['id']}", json=nulls)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["title"], body["system_prompt"], body["model"]) == ("Cuisine", "Sois bref.", None)


async def test_export_and_import_round_trip(fake: FakeWorld) -> None:
    original = await new_conversation(
        fake.client, title="Été", system_prompt="Sois bref.", settings={"max_tokens": 64}
    )
    cid = original["id"]
    await fake.client.post(f"{API}/{cid}/reply", json={"content": "**Bonjour**"})
    exported = await fake.client.get(f"{API}/{cid}/export", params={"format": "json"})
    assert exported.status_code == 200
    assert exported.headers["content-disposition"] == 'attachment; filename="t.json"'
    document = exported.json()
    assert document["format"] == "iaforall.conversation" and document["version"] == 1

    imported = await fake.client.post(f"{API}/import", content=exported.content)
    assert imported.status_code == 201, imported.text
    copy = imported.json()
    assert copy["id"] != cid
    for key in ("title", "system_prompt", "settings", "model"):
        assert copy[key] == original[key] or key == "model"
    assert [(m["role"], m["content"]) for m in copy["messages"]] == [
        ("user", "**Bonjour**"),
        ("assistant", "**Bonjour**"),
    ]

    markdown = await fake.client.get(f"{API}/{cid}/export", params={"format": "markdown"})
    assert markdown.headers["content-type"].startswith("text/markdown")
    text = markdown.text
    assert text.startswith("# Été\n") and "Sois bref." in text and "**Bonjour**" in text
    assert "## You\n" in text and "## System prompt\n" in text
    french = await fake.client.get(
        f"{API}/{cid}/export", params={"format": "markdown", "lang": "fr-CA"}
    )
    assert "## Vous\n" in french.text and "## Prompt système\n" in french.text


async def test_bad_input_gets_clear_errors_and_loses_nothing(fake: FakeWorld) -> None:
    cid = (await new_conversation(fake.client, title="keep me"))["id"]
    cases = [
        ("post", f"{API}/import", b"{not json", 400, "invalid_json"),
        ("post", f"{API}/import", b'{"format": "other", "version": 1}', 400, "invalid_value"),
        (
            "post",
            f"{API}/import",
            b'{"format": "iaforall.conversation", "version": 1, '
            b'"messages": [{"role": "system", "content": "x"}]}',
            400,
            "invalid_value",
        ),
        ("patch", f"{API}/{cid}", b'{"settings": {"temperature": 9}}', 400, "invalid_value"),
        ("patch", f"{API}/{cid}", b'{"colour": "red"}', 400, "invalid_value"),
        ("post", f"{API}/{cid}/reply", b'{"content": "   "}', 400, "invalid_request"),
        ("post", f"{API}/{cid}/reply", b'{"action": "regenerate"}', 400, "invalid_request"),
        ("post", f"{API}/{cid}/reply", b'{"action": "shout"}', 400, "invalid_value"),
        ("post", f"{API}/{cid}/reply", b'{"content": "a\\u0000b"}', 400, "invalid_value"),
        ("post", f"{API}/missing/reply", b'{"content": "x"}', 404, "not_found"),
        ("get", f"{API}/{cid}/export?format=pdf", None, 400, "invalid_value"),
    ]
    for method, url, body, status, code in cases:
        response = await fake.client.request(method, url, content=body)
        assert response.status_code == status, (url, body, response.text)
        error = response.json()["error"]
        assert error["code"] == code and error["message"], (url, body, error)
    huge = b'{"format": "iaforall.conversation", "version": 1, "title": "' + b"x" * 65_000_000
    too_large = await fake.client.post(f"{API}/import", content=huge)
    assert too_large.status_code == 413
    assert "64 MB" in too_large.json()["error"]["message"]
    kept = (await fake.client.get(f"{API}/{cid}")).json()
    assert (
        kept["title"] == "keep me"
        and kept["messages"] == []
        and kept["settings"]["temperature"] is None
    )


async def test_the_models_builtin_prompt_is_shown_and_can_be_removed(fake: FakeWorld) -> None:
    """A template's own system prompt: shown in the settings and in what the model sees;
    `remove_builtin_prompt` sends an empty system message instead; one's own replaces it."""
    await fake.client.get("/web/api/models/builtin-prompt", params={"model": "tiny"})
    engine = fake.engine("tiny:latest")
    engine.builtin = BuiltinPrompt("You are Tiny.", used=True)
    shown = await fake.client.get("/web/api/models/builtin-prompt", params={"model": "tiny"})
    assert shown.json() == {"model": "tiny:latest", "text": "You are Tiny.", "used": True}

    cid = (await new_conversation(fake.client))["id"]
    seen = (await fake.client.post(f"{API}/{cid}/prompt", json={"draft": "hi"})).json()
    assert seen["prompt"] == "<system>You are Tiny.\n<user>hi\n"
    assert seen["builtin_system_prompt"] == {"text": "You are Tiny.", "used": True}

    patched = await fake.client.patch(f"{API}/{cid}", json={"remove_builtin_prompt": True})
    assert patched.json()["remove_builtin_prompt"] is True
    seen = (await fake.client.post(f"{API}/{cid}/prompt", json={"draft": "hi"})).json()
    assert seen["prompt"] == "<system>\n<user>hi\n"
    assert seen["builtin_system_prompt"]["used"] is False
    await fake.client.post(f"{API}/{cid}/reply", json={"content": "hi"})
    assert engine.requests[-1].messages[0] == {"role": "system", "content": ""}

    await fake.client.patch(f"{API}/{cid}", json={"system_prompt": "Be brief."})
    seen = (await fake.client.post(f"{API}/{cid}/prompt", json={"draft": "hi"})).json()
    assert seen["prompt"].startswith("<system>Be brief.\n<user>hi\n<assistant>hi\n")
    created = await new_conversation(fake.client, remove_builtin_prompt=True)
    assert created["remove_builtin_prompt"] is True


async def test_the_builtin_prompt_of_an_unknown_model_is_a_404(fake: FakeWorld) -> None:
    response = await fake.client.get("/web/api/models/builtin-prompt", params={"model": "nope"})
    assert response.status_code == 404
    assert "nope" in response.json()["error"]["message"]
