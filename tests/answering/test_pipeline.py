"""The one answer pipeline on the scriptable fake engine: what it resolves, in which order its
events come, how it fails, and what it does around the answer (keep-alive, context)."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from iaforall.answering import Pipeline, Question
from iaforall.app import create_app
from iaforall.core.errors import (
    ContextLengthExceeded,
    EngineUnavailable,
    Forbidden,
    ModelNotFound,
)
from iaforall.core.events import Chunk, Decided, Event, Failed, QueueUpdate
from iaforall.core.types import (
    LOCAL_PRINCIPAL,
    ChatRequest,
    ModelId,
    Principal,
    Sampling,
    UserId,
)
from iaforall.engines.pool import EnginePool
from iaforall.policy.gate import Policy
from iaforall.policy.rules import NO_RULES, Rules, parse_rules
from iaforall.services import Services
from iaforall.store.audit import AuditLog
from iaforall.vision import ImageReader
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.policy.samples import BILINGUAL

MEMBER = Principal(UserId("ana"), "ana", "member")
PHONE = "06 12 34 56 78"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Services, FakeWorld]]:
    stock_store(tmp_path)
    fakes = FakeWorld(client=httpx.AsyncClient())
    app = create_app(fake_settings(tmp_path, max_queue=2, queue_timeout=5), factory=fakes.factory)
    async with served(app):
        yield app.state.services, fakes


def pipeline(svc: Services, rules: Rules = NO_RULES) -> Pipeline:
    policy = Policy(rules, AuditLog(svc.database), max_chars=svc.settings.policy.rules_max_chars)
    return Pipeline(
        dispatcher=svc.dispatcher,
        gate=svc.gate,
        pool=svc.pool,
        retriever=svc.knowledge.retriever,
        reader=ImageReader(svc.settings.images),
        policy=policy,
        default_keep_alive=svc.settings.engine.keep_alive,
    )


def ask(text: str = "hi", model: str = "tiny", **sampling: Any) -> ChatRequest:
    return ChatRequest(
        model=ModelId(model),
        messages=({"role": "user", "content": text},),
        sampling=Sampling(**sampling),
        stream=True,
    )


async def events_of(answer: Pipeline, question: Question) -> list[Event]:
    streamed = await answer.stream(LOCAL_PRINCIPAL, question)
    return [event async for event in streamed.events]


def shape(events: list[Event]) -> list[str]:
    """Each event's kind; a chunk as its text, the usage chunk as "usage"."""
    out = []
    for event in events:
        if isinstance(event, Chunk):
            out.append("usage" if event.usage_only else f"text:{event.delta.text}")
        else:
            out.append(type(event).__name__)
    return out


async def test_the_model_is_resolved_once_per_question(
    world: tuple[Services, FakeWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, _ = world
    calls: list[str] = []
    resolve = EnginePool.resolve

    def counted(pool: EnginePool, name: str) -> Any:
        calls.append(name)
        return resolve(pool, name)

    monkeypatch.setattr(EnginePool, "resolve", counted)
    answer = pipeline(svc)
    await events_of(answer, Question(ask(model="tiny"), return_prompt=True))
    assert calls == ["tiny"]
    calls.clear()
    whole = await answer.whole(LOCAL_PRINCIPAL, Question(ask(model="tiny")))
    assert whole.model == "tiny:latest" and calls == ["tiny"]


async def test_events_in_order_with_the_output_decisions_before_the_last_chunk(
    world: tuple[Services, FakeWorld],
) -> None:
    svc, fakes = world
    answer = pipeline(svc, parse_rules(BILINGUAL))
    await answer.whole(LOCAL_PRINCIPAL, Question(ask()))  # loads the engine
    fakes.engine("tiny:latest").enqueue("Call ", PHONE)
    streamed = await answer.stream(LOCAL_PRINCIPAL, Question(ask(f"homework {PHONE}")))
    assert streamed.answering and streamed.admission == QueueUpdate(0, streamed.admission.wait_s)
    assert [d.rule_id for d in streamed.decisions] == ["phone-numbers", "homework"]
    events = [event async for event in streamed.events]
    # The finish chunk is the last one with choices: the decisions ride just before it.
    assert shape(events) == ["text:Call ", f"text:{PHONE}", "Decided", "text:", "usage"]
    decided = events[2]
    assert isinstance(decided, Decided) and decided.stage == "output"
    assert [d["rule"] for d in decided.decisions] == ["phone-numbers"]


async def test_without_output_rules_nothing_is_held(world: tuple[Services, FakeWorld]) -> None:
    svc, fakes = world
    answer = pipeline(svc)
    await answer.whole(LOCAL_PRINCIPAL, Question(ask()))
    fakes.engine("tiny:latest").enqueue("a", "b")
    assert shape(await events_of(answer, Question(ask()))) == ["text:a", "text:b", "text:", "usage"]


async def test_errors_before_the_start_are_raised_after_it_told(
    world: tuple[Services, FakeWorld],
) -> None:
    svc, fakes = world
    answer = pipeline(svc)
    with pytest.raises(ModelNotFound):
        await answer.stream(LOCAL_PRINCIPAL, Question(ask(model="nothing-here")))
    await answer.whole(LOCAL_PRINCIPAL, Question(ask()))
    fakes.engine("tiny:latest").enqueue(EngineUnavailable("worker died"))
    with pytest.raises(EngineUnavailable):
        await answer.stream(LOCAL_PRINCIPAL, Question(ask()))
    fakes.engine("tiny:latest").enqueue("half", EngineUnavailable("worker died"))
    events = await events_of(answer, Question(ask()))
    assert shape(events) == ["text:half", "Failed"]
    last = events[-1]
    assert isinstance(last, Failed) and isinstance(last.error, EngineUnavailable)


async def test_context_is_refused_or_filled(world: tuple[Services, FakeWorld]) -> None:
    svc, fakes = world
    answer = pipeline(svc)
    with pytest.raises(ContextLengthExceeded):
        await answer.stream(LOCAL_PRINCIPAL, Question(ask(max_tokens=100_000)))
    await events_of(answer, Question(ask(max_tokens=100_000), fill_context=True))
    asked = fakes.engine("tiny:latest").requests[-1]
    assert asked.sampling.max_tokens == 2048  # the context the fake settings give


async def test_keep_alive_left_set_or_reset_and_members_cannot_unload(
    world: tuple[Services, FakeWorld],
) -> None:
    svc, _ = world
    answer = pipeline(svc)
    with pytest.raises(Forbidden):
        await answer.stream(MEMBER, Question(ask(), keep_alive=0))
    await events_of(answer, Question(ask(), keep_alive="1h"))
    resident = svc.pool.residents()[ModelId("tiny:latest")]
    assert resident.keep_alive == 3600
    await events_of(answer, Question(ask()))  # says nothing: left as it is
    assert resident.keep_alive == 3600
    await events_of(answer, Question(ask(), keep_alive="default"))  # Ollama's way: reset
    assert resident.keep_alive is None
    assert await answer.load(LOCAL_PRINCIPAL, "tiny", 0) is True
    assert ModelId("tiny:latest") not in svc.pool.residents()


SURFACES = (
    "api/openai/router.py",
    "api/ollama/router.py",
    "api/web/reply.py",
    "api/responses/router.py",
    "api/anthropic/router.py",
)


@pytest.mark.parametrize("surface", SURFACES)
def test_dialects_only_translate(surface: str) -> None:
    """No dialect wires the request path itself: none reaches the dispatcher, the gate, the
    rules, the knowledge retriever or the image reader; they call the pipeline."""
    import iaforall

    source = (Path(iaforall.__file__).parent / surface).read_text()
    names = {node.attr for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Attribute)}
    reached = names & {"dispatcher", "gate", "check_input", "check_output", "retriever", "pool"}
    assert not reached, f"{surface} wires the pipeline itself: {sorted(reached)}"
