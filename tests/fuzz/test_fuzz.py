"""The whole HTTP API fuzzed by schemathesis from its own OpenAPI schema, over real HTTP on the
fake engine: in local mode, and with accounts on as a member, as an admin and without
credentials. No answer may be a server error; without credentials, only the public operations
may answer anything but 401/403. Seeded (derandomized): the same cases on every run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, routing
from starlette.routing import WebSocketRoute

from tests.fuzz.harness import Check, PathChoices, fuzz, no_server_error, steered
from tests.fuzz.world import Running, running, target

# Cases per operation with a body, thrice that for the others (much cheaper to make), in each
# run; fewer without credentials, where nearly all are refused at once. At 15 the five tests
# took 140 s of a CI run as the API grew (5,000 requests in 90 s when first written).
EXAMPLES = 10
ANONYMOUS_EXAMPLES = 5

# With accounts on, every operation needs credentials but these. (method, path): why. Remove
# a row when its route goes behind auth: the tests then check that it refuses strangers.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/health"): "liveness, for supervisors and load balancers",
    ("GET", "/api/version"): "Ollama clients ask it before anything else",
    ("HEAD", "/api/version"): "the same, by HEAD",
    ("GET", "/web/api/session"): "the sign-in page asks who the browser is",
    ("POST", "/web/api/session"): "signing in",
    ("DELETE", "/web/api/session"): "signing out (without a session, nothing happens)",
    ("POST", "/web/api/setup"): "the first admin, with the one-time link printed at start",
    ("GET", "/v1/policy"): "the content rules are published to everyone",
    # Outside the OpenAPI schema: not fuzzed, asked by the last test below
    ("GET", "/"): "the web app's page (a liveness line for non-browsers)",
    ("HEAD", "/"): "Ollama's command line checks that its server runs",
    ("GET", "/admin"): "the admin page (its data is admins' only)",
    ("GET", "/rules"): "the published rules' page",
    ("GET", "/web/api/languages"): "the sign-in page is translated too",
    ("GET", "/static/{path}"): "the web app's files",
    ("GET", "/sw.js"): "the service worker that keeps the web app's files for offline use",
    ("GET", "/docs/assets/{path}"): "Swagger UI's and ReDoc's scripts (the docs pages are not)",
}


# Names of real things in bodies, so that generated requests get past "no such model".
MODELS = ["tiny", "tiny:latest"]
ENCODER = ["use:multilingual"]
HELLO = [[{"role": "user", "content": "Hello"}]]
HINTS: dict[str, dict[str, list[Any]]] = {
    "ChatCompletionBody": {"model": MODELS, "messages": HELLO},
    "CompletionBody": {"model": MODELS},
    "ResponseBody": {"model": MODELS, "input": ["Hello", *HELLO]},
    "ChatBody": {"model": MODELS, "messages": HELLO},
    "GenerateBody": {"model": MODELS},
    "ConversationCreate": {"model": MODELS},
    "ConversationPatch": {"model": MODELS},
    "ExportedConversation": {"model": MODELS},
    "EmbeddingBody": {"model": ENCODER},
    "EmbedBody": {"model": ENCODER},
    "CopyBody": {"source": MODELS},
    # shown and deleted: the other model, so that the others keep theirs
    "NameBody": {"model": ["other"], "name": ["other"]},
}


def credentials_required(method: str, path: str, status: int) -> str | None:
    if (method, path) in PUBLIC or status in (401, 403):
        return None
    return f"answered {status} without credentials (not a public operation)"


def things(ids: Mapping[str, str]) -> PathChoices:
    """The ids of things that exist, for each path parameter: DELETE gets its own (one the
    fuzzer may delete), the others share the kept ones."""

    def choose(method: str, path: str, names: Sequence[str]) -> list[dict[str, str]]:
        deleting = method == "DELETE"
        last = path.rsplit("/", 1)[-1].strip("{}")
        doomed = {n: deleting and n == last for n in names}
        values = {
            "model_id": "tiny:latest",
            "kb_id": ids["doomed_base" if doomed.get("kb_id") else "base"],
            "file_id": ids["doomed_file" if doomed.get("file_id") else "file"],
            "name": "carol",
            "conversation_id": ids[
                "doomed_conversation"
                if doomed.get("conversation_id")
                else "image_conversation"
                if "/images/" in path
                else "conversation"
            ],
            "image_id": ids["image"],
            "key_id": ids.get("doomed_key", "no-such-key"),
            "response_id": ids["doomed_response" if doomed.get("response_id") else "response"],
            "ref": "dave" if doomed.get("ref") else "carol",
        }
        return [{n: values[n] for n in names}]

    return choose


def _fuzz(
    server: Running,
    headers: Mapping[str, str],
    checks: Sequence[Check] = (no_server_error,),
    *,
    examples: int = EXAMPLES,
) -> None:
    report = fuzz(
        steered(server.schema, HINTS),
        server.url,
        headers=headers,
        path_choices=things(server.ids),
        checks=checks,
        max_examples=examples,
    )
    print(report.summary())
    assert not report.findings, report.failure()


def test_local_mode(tmp_path: Path) -> None:
    with running(tmp_path, accounts=False) as server:
        _fuzz(server, {})


def test_a_member(tmp_path: Path) -> None:
    with running(tmp_path, accounts=True, who="bob") as server:
        _fuzz(server, {"Authorization": f"Bearer {server.keys['bob']}"})


def test_an_admin(tmp_path: Path) -> None:
    with running(tmp_path, accounts=True, who="ada") as server:
        _fuzz(server, {"Authorization": f"Bearer {server.keys['ada']}"})


def test_without_credentials(tmp_path: Path) -> None:
    with running(tmp_path, accounts=True, who="bob") as server:
        checks = (no_server_error, credentials_required)
        _fuzz(server, {}, checks, examples=ANONYMOUS_EXAMPLES)


def _outside_the_schema(app: FastAPI) -> set[tuple[str, str]]:
    documented = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    found = set()
    for route in routing.iter_route_contexts(app.routes):
        if isinstance(getattr(route, "original_route", route), WebSocketRoute):  # see test_realtime
            continue
        path = getattr(route, "path_format", None) or getattr(route, "path", "")
        methods = set(getattr(route, "methods", None) or {"GET"})
        if "GET" in methods:
            methods.discard("HEAD")  # Starlette answers HEAD wherever it answers GET
        found |= {(m, path) for m in methods if (m, path) not in documented}
    return found


async def test_routes_outside_the_schema_are_public_or_refused(tmp_path: Path) -> None:
    """The fuzzer only sees the schema; every other route, asked without credentials, answers
    (without a server error) if it is in PUBLIC, and 401/403 if it is not."""
    async with target(tmp_path, accounts=True) as world:
        hidden = _outside_the_schema(world.app)
        assert hidden, "the pages are not in the schema"
        async with httpx.AsyncClient(base_url=world.url, timeout=30) as client:
            for method, path in sorted(hidden):
                url = path.replace("{path}", "favicon.svg")
                response = await client.request(method, url, headers={"Accept": "text/html"})
                status = response.status_code
                if (method, path) in PUBLIC:
                    assert status < 500, (method, url, status)
                else:
                    assert status in (401, 403), (method, url, status, "not in PUBLIC")
