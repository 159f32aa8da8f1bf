"""The one path from a question to its answer, whichever dialect asked.

In order: the model is resolved (once), images are read for it, the knowledge bases' passages
are placed before the question, the published rules check the input, the person's quotas admit
it, the fair scheduler gives it a slot, the engine answers, the rules check the output, the
model's keep-alive is set and the usage recorded. A dialect translates its request into a
`Question` and the `Streamed` events (or the `Whole` answer) back into its own shape; it never
wires any of these steps itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from iaforall.answering.jobs import Tally, Work, in_line
from iaforall.answering.keep_alive import keep_alive_for
from iaforall.answering.pieces import Pieces, in_pieces
from iaforall.answering.question import KnowledgeAsk, Question
from iaforall.answering.start import Item, start_stream
from iaforall.core.errors import IAForAllError
from iaforall.core.events import Chunk, Decided, Event, Failed, QueueUpdate
from iaforall.core.types import (
    ChatRequest,
    CompletionRequest,
    GenerationRequest,
    ModelId,
    Principal,
)
from iaforall.engines.pool import EnginePool
from iaforall.engines.protocol import BuiltinPrompt, Capabilities
from iaforall.engines.runtime import Kind
from iaforall.knowledge.retrieve import Citation, Retriever, question_of, with_sources
from iaforall.people.gate import Gate
from iaforall.policy.engine import Decision
from iaforall.policy.gate import Policy
from iaforall.scheduling.dispatch import Dispatcher
from iaforall.vision import ImageReader, has_images, read_images


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """What to set the model's keep-alive to after the answer (None: the server's default)."""

    seconds: float | None


@dataclass
class Prepared:
    """A question made ready to run: its model resolved, images read, sources placed,
    the input rules passed."""

    question: Question
    generation: GenerationRequest
    capabilities: Capabilities
    keep_alive: KeepAlive | None  # None: the model's keep-alive is left as it is
    was_loaded: bool  # the model was loaded when the question came (no load time)
    decisions: list[Decision] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    prompt: str | None = None

    @property
    def model(self) -> ModelId:
        return self.generation.model


@dataclass
class Streamed:
    """An answer that has started: its place in line on arrival, what the input rules
    decided, and its events from the first one to show (the admission when it waits in line,
    else the first chunk). Errors after the start come as a last `Failed`. Closing `events`
    once iterated, or calling `close`, stops the generation at once."""

    model: ModelId
    admission: QueueUpdate
    answering: bool  # served at once: the engine's first chunk is already in `events`
    events: AsyncGenerator[Event, None]
    decisions: list[Decision]
    citations: list[Citation]
    prompt: str | None
    was_loaded: bool
    close: Callable[[], Awaitable[None]] = field(repr=False)  # stops it, iterated or not


@dataclass
class Whole:
    """A whole answer: the engine's OpenAI object, and what the rules decided on both sides."""

    model: ModelId
    result: dict[str, Any]
    admission: QueueUpdate
    decisions: list[Decision]
    citations: list[Citation]
    prompt: str | None


class Pipeline:
    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        gate: Gate,
        pool: EnginePool,
        retriever: Retriever,
        reader: ImageReader,
        policy: Policy,
        default_keep_alive: float,
    ) -> None:
        self._dispatcher = dispatcher
        self._gate = gate
        self._pool = pool
        self._retriever = retriever
        self._reader = reader
        self._policy = policy
        self._default_keep_alive = default_keep_alive

    async def stream(self, me: Principal, question: Question) -> Streamed:
        """Start the answer; errors before it starts (unknown model, rules, quotas, a full
        line) are raised here, so each dialect gives them their HTTP status."""
        prepared = await self._prepare(me, question)
        try:
            admission, first, rest = await start_stream(self._items(me, prepared))
        except BaseException:
            await self._keep(prepared)
            raise
        events = self._events(prepared, first, rest)

        async def close() -> None:
            # Closing `events` runs its cleanup only if it was started: `rest` is closed
            # here too, so an answer given up before its first event frees its place.
            await events.aclose()
            await rest.aclose()

        return Streamed(
            model=prepared.model,
            admission=admission,
            answering=isinstance(first, Chunk),
            events=events,
            decisions=prepared.decisions,
            citations=prepared.citations,
            prompt=prepared.prompt,
            was_loaded=prepared.was_loaded,
            close=close,
        )

    async def whole(self, me: Principal, question: Question) -> Whole:
        """The whole answer at once (the caller cancels it if its client leaves)."""
        prepared = await self._prepare(me, question)
        admission: list[QueueUpdate] = []

        async def work(admitted: GenerationRequest) -> dict[str, Any]:
            return await self._dispatcher.generate(admitted, on_admission=admission.append)

        try:
            result = await self._gate.generate(me, prepared.generation, work)
        finally:
            await self._keep(prepared)
        said = await self._policy.check_output(
            _text_of(result),
            prepared.generation,
            kind=question.kind,
            language=question.language,
        )
        return Whole(
            model=prepared.model,
            result=result,
            admission=admission[0],
            decisions=prepared.decisions + said,
            citations=prepared.citations,
            prompt=prepared.prompt,
        )

    async def prompt(self, question: Question) -> tuple[ModelId, str]:
        """The exact text the model would be given for this chat (images read, sources
        placed, template applied); it loads the model but takes no generation slot."""
        asked = question.generation
        if not isinstance(asked, ChatRequest):
            raise TypeError("only a chat has a rendered prompt")
        chat, caps = self._dispatcher.check(asked)
        query = question_of(chat)
        chat = await self._with_images(chat, caps, count=question.count_images)
        chat, _ = await self._with_knowledge(chat, question.knowledge, query)
        return chat.model, await self._dispatcher.render_prompt(chat)

    async def builtin_prompt(self, name: str) -> tuple[ModelId, BuiltinPrompt]:
        """A chat model's own system prompt (read from its chat template) and whether this
        server lets the template add it to a chat without one; loads the model."""
        model, _ = self._dispatcher.resolve(name)
        return model, await self._dispatcher.builtin_prompt(model)

    async def count_tokens(self, question: Question) -> tuple[ModelId, int]:
        """How many tokens the model would be given for this chat: that exact text, counted
        by the model's own tokenizer."""
        model, prompt = await self.prompt(question)
        return model, await self._dispatcher.count_tokens(model, prompt)

    async def load(self, me: Principal, name: str, keep_alive: float | str | None) -> bool:
        """Load a model without a question (Ollama's empty request), or unload it with a
        keep-alive of 0 (then True)."""
        keep = self._keep_alive(me, keep_alive, reset=True)
        model, _ = self._dispatcher.resolve(name)
        if keep is not None and keep.seconds == 0:
            await self._pool.keep(model, 0)
            return True
        await self._pool.load(model)
        if keep is not None:
            await self._pool.keep(model, keep.seconds)
        return False

    def runtime(self, name: str, kind: Kind) -> ModelId:
        """A runtime's own name ("whisper-1" -> "whisper:base"); ModelNotFound if none of
        this kind answers to it."""
        return self._pool.runtimes.resolve(name, kind)

    def job(
        self,
        me: Principal,
        model: ModelId,
        prepare: Callable[[], Awaitable[float]],
        work: Work,
        tally: Tally,
    ) -> AsyncGenerator[Any, None]:
        """A job on a runtime (a transcription, a speech), admitted like an answer: see
        `answering.jobs.in_line`."""
        runtimes = self._pool.runtimes
        return in_line(
            self._gate, self._dispatcher.scheduler, runtimes, me, model, prepare, work, tally
        )

    async def check_prompt(self, me: Principal, model: ModelId, prompt: str) -> list[Decision]:
        """The published input rules on a prompt that is not a chat (a picture's): decisions
        logged and returned, PolicyBlocked raised if one blocks it."""
        asked = CompletionRequest(model, prompt, user=me.user)
        return await self._policy.check_input(asked, kind="image")

    def pieces(
        self, me: Principal, model: ModelId
    ) -> contextlib.AbstractAsyncContextManager[Pieces]:
        """A job done in pieces as its input arrives: see `answering.pieces`."""
        return in_pieces(self._gate, self._dispatcher.scheduler, self._pool.runtimes, me, model)

    async def _prepare(self, me: Principal, question: Question) -> Prepared:
        keep = self._keep_alive(me, question.keep_alive, reset=question.keep_alive == "default")
        generation, caps = self._dispatcher.check(
            question.generation, fill_context=question.fill_context
        )
        prepared = Prepared(
            question,
            generation,
            caps,
            keep,
            was_loaded=generation.model in self._pool.residents(),
        )
        if isinstance(generation, ChatRequest):
            query = question_of(generation)  # what was asked, not the images' text
            chat = await self._with_images(generation, caps, count=question.count_images)
            chat, prepared.citations = await self._with_knowledge(chat, question.knowledge, query)
            prepared.generation = chat
        prepared.decisions = await self._policy.check_input(
            prepared.generation, kind=question.kind, language=question.language
        )
        if question.return_prompt and isinstance(prepared.generation, ChatRequest):
            prepared.prompt = await self._dispatcher.render_prompt(prepared.generation)
        return prepared

    def _keep_alive(
        self, me: Principal, value: float | str | None, *, reset: bool
    ) -> KeepAlive | None:
        if value == "default" or (value is None and reset):
            return KeepAlive(None)
        seconds = keep_alive_for(me, value, self._default_keep_alive)  # Forbidden: at once
        return None if seconds is None else KeepAlive(seconds)

    async def _keep(self, prepared: Prepared) -> None:
        if prepared.keep_alive is not None:  # 0 unloads, negative keeps, None: the default
            await self._pool.keep(prepared.model, prepared.keep_alive.seconds)

    async def _with_images(
        self, chat: ChatRequest, caps: Capabilities, *, count: bool
    ) -> ChatRequest:
        """Image parts read into labelled text (OCR) before anything else sees the request, or
        kept as checked images for a model that sees them (one with a vision projector)."""
        if not has_images(chat):
            return chat
        return await read_images(chat, self._reader, model_sees_images=caps.vision, count=count)

    async def _with_knowledge(
        self, chat: ChatRequest, asked: KnowledgeAsk | None, query: str
    ) -> tuple[ChatRequest, list[Citation]]:
        """The best passages for `query` of the knowledge asked for, placed before the
        question."""
        if asked is None or not (asked.bases or asked.files):
            return chat, []
        citations = await self._retriever.search(
            chat.user, asked.bases, query, k=asked.k, documents=asked.files
        )
        return with_sources(chat, citations), citations

    async def _items(self, me: Principal, prepared: Prepared) -> AsyncGenerator[Item, None]:
        """The dispatcher's items past the person's quotas; with output rules, the last text
        chunk is held until the whole answer is checked, so that their decisions come just
        before it (a block ends the answer with the error instead)."""
        question = prepared.question
        items = self._gate.stream(me, prepared.generation, self._dispatcher.stream_queued)
        async with contextlib.aclosing(items):
            if not self._policy.rules.for_stage("output"):
                async for item in items:
                    yield item
                return
            text: list[str] = []
            held: list[Item] = []  # the last text chunk and what followed it
            async for item in items:
                if isinstance(item, Chunk) and not item.usage_only:
                    for earlier in held:
                        yield earlier
                    held = [item]
                    text.append(item.delta.text)
                elif held:
                    held.append(item)
                else:
                    yield item
        said = await self._policy.check_output(
            "".join(text), prepared.generation, kind=question.kind, language=question.language
        )
        if said and held:
            yield Decided("output", tuple(d.public() for d in said))
        for last in held:
            yield last

    async def _events(
        self, prepared: Prepared, first: Item | None, rest: AsyncGenerator[Item, None]
    ) -> AsyncGenerator[Event, None]:
        try:
            item = first
            while item is not None:
                yield item
                item = await anext(rest, None)
        except IAForAllError as exc:
            yield Failed(exc)
        finally:
            await rest.aclose()  # a client that left stops its generation at once
            await self._keep(prepared)


def _text_of(result: dict[str, Any]) -> str:
    """The text of a whole chat or completion answer."""
    choice = (result.get("choices") or [{}])[0]
    message = choice.get("message")
    if isinstance(message, dict):
        return str(message.get("content") or "")
    return str(choice.get("text") or "")
