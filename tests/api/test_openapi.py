"""The OpenAPI schema describes every request body, from the very model the handler
validates it with (handlers read bodies themselves: JSON whatever the Content-Type, within a
limit enforced while streaming), so that clients, the docs and the fuzzer know what to send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iaforall.api.knowledge import SearchBody
from iaforall.api.openai.schemas import ChatCompletionBody
from iaforall.app import create_app
from tests.conftest import fake_settings

# Operations that change something and take no body: the path says it all.
BODILESS = {("put", "/v1/knowledge_bases/{kb_id}/shares/{name}")}
MULTIPART = {
    "/v1/audio/transcriptions": ["file", "model"],
    "/v1/audio/translations": ["file", "model"],
    "/v1/knowledge_bases/{kb_id}/files": ["file"],
}


def schema(home: Path) -> dict[str, Any]:
    return create_app(fake_settings(home)).openapi()


def _resolved(document: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    ref: str = body["content"]["application/json"]["schema"]["$ref"]
    found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return found


def test_every_post_and_patch_documents_its_body(tmp_path: Path) -> None:
    document = schema(tmp_path)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in ("post", "put", "patch") or (method, path) in BODILESS:
                continue
            body = operation.get("requestBody")
            assert body is not None and body["required"], (method, path)
            if path in MULTIPART:
                form = body["content"]["multipart/form-data"]["schema"]
                assert form["required"] == MULTIPART[path], path
            else:
                assert _resolved(document, body)["type"] == "object", (method, path)


def test_a_body_is_documented_from_the_model_that_validates_it(tmp_path: Path) -> None:
    document = schema(tmp_path)
    search = document["paths"]["/v1/knowledge_bases/{kb_id}/search"]["post"]["requestBody"]
    assert _resolved(document, search) == SearchBody.model_json_schema()
    chat = document["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    documented = _resolved(document, chat)
    assert documented["required"] == ["model", "messages"]
    assert (
        documented["properties"].keys()
        == ChatCompletionBody.model_json_schema()["properties"].keys()
    )
    # Nested models are components too, and every reference points at one.
    text = str(document)
    refs = [part.split("'")[0] for part in text.split("#/components/schemas/")[1:]]
    assert all(ref in document["components"]["schemas"] for ref in refs)
