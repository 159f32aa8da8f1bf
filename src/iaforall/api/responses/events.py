"""A streamed chat answer as the Responses API's typed events, in OpenAI's order:

response.created -> (response.queued while in line) -> response.in_progress ->
per output item: response.output_item.added -> [message] response.content_part.added ->
response.output_text.delta* -> response.output_text.done -> response.content_part.done |
[function call] response.function_call_arguments.delta* -> ...arguments.done ->
response.output_item.done; then response.completed (or .incomplete at max_output_tokens;
error -> response.failed when the model fails mid-way).

Pure: it is fed the pipeline's events (or, piece by piece, text, tool-call pieces, the finish
and the usage) and hands back the Responses events as dicts, each with its sequence number, and
the final Response to store. The output rules' decisions ride in the `iaforall` field of the
next text event (a delta, or the text's `done` event when no text follows), and in the final
Response's with the others.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from iaforall.api.answering import merged
from iaforall.api.responses.schemas import new_item_id
from iaforall.api.responses.translate import (
    Shell,
    function_call_item,
    message_item,
    token_usage,
)
from iaforall.core.errors import IAForAllError
from iaforall.core.events import Chunk, Decided, Event, Failed, QueueUpdate

Sent = dict[str, Any]  # one Responses event, as JSON


def sse_frame(event: Sent) -> bytes:
    """One event as OpenAI sends it: its type as the SSE event name, then its JSON."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


@dataclass
class _Open:
    """The output item being streamed."""

    index: int
    item: dict[str, Any]
    text: list[str] = field(default_factory=list)  # a message's text, or a call's arguments


@dataclass
class ResponseEvents:
    shell: Shell
    extra: dict[str, Any] = field(default_factory=dict)  # our `iaforall` field, when set
    output: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    final: dict[str, Any] | None = None  # the Response, once completed (or failed)
    _sequence: int = 0
    _started: bool = False
    _open: _Open | None = None
    _calls: dict[int, int] = field(default_factory=dict)  # tool call index -> output index
    _pending: dict[str, Any] = field(default_factory=dict)  # fields for the next text delta

    def on(self, event: Event) -> list[Sent]:
        """The Responses events for one of the pipeline's events."""
        if isinstance(event, QueueUpdate):
            if self._started:  # paused mid-answer: a Response does not go back to "queued"
                return self.paused(event.position, event.wait_s)
            return self.queued(event.position, event.wait_s)
        if isinstance(event, Decided):
            self.extra = merged(self.extra, event.field())
            self._pending = merged(self._pending, event.field())
            return []
        if isinstance(event, Failed):
            return self.failed(event.error)
        return self._chunk(event)

    def _chunk(self, chunk: Chunk) -> list[Sent]:
        delta = chunk.delta
        out = self.text(delta.text)
        for call in delta.tool_calls:
            out += self.tool_call(call.index, call.id, call.name, call.arguments)
        self.finish(delta.finish_reason)
        if chunk.usage is not None:  # the last chunk: its cached tokens read once
            details = json.loads(chunk.data).get("usage", {}).get("prompt_tokens_details") or {}
            cached = int(details.get("cached_tokens") or 0)
            self.count(chunk.usage.prompt_tokens, chunk.usage.completion_tokens, cached)
        return out

    def _event(self, kind: str, **fields: Any) -> Sent:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def _response(self, status: str, **more: Any) -> dict[str, Any]:
        if self.extra and "iaforall" not in more:
            more["iaforall"] = self.extra
        return self.shell.response(status, **more)

    def created(self, queue_position: int = 0, wait_s: float = 0.0) -> list[Sent]:
        """The first events: `queued` when the request waits in line (its place comes as
        the pipeline's first event), else in progress at once."""
        if queue_position > 0:
            queue = self._queue(queue_position, wait_s)
            return [
                self._event("response.created", response=self._response("queued", iaforall=queue))
            ]
        created = self._event("response.created", response=self._response("in_progress"))
        return [created, *self._started_events()]

    def queued(self, position: int, wait_s: float) -> list[Sent]:
        """A new place in line (0: its turn has come)."""
        if position > 0:
            return [self._queued(self._response("queued", iaforall=self._queue(position, wait_s)))]
        return self._started_events()

    def paused(self, position: int, wait_s: float) -> list[Sent]:
        """The answer was paused for someone else's turn (0: it resumes): still in progress,
        with its place in line and `paused` in the `iaforall` field."""
        if position == 0:
            return []
        place = self._queue(position, wait_s)
        place["queue"]["paused"] = True
        return [
            self._event(
                "response.in_progress", response=self._response("in_progress", iaforall=place)
            )
        ]

    def _queued(self, response: dict[str, Any]) -> Sent:
        return self._event("response.queued", response=response)

    def _queue(self, position: int, wait_s: float) -> dict[str, Any]:
        return {**self.extra, "queue": {"position": position, "wait_s": round(wait_s, 1)}}

    def _started_events(self) -> list[Sent]:
        if self._started:
            return []
        self._started = True
        return [self._event("response.in_progress", response=self._response("in_progress"))]

    def text(self, piece: str) -> list[Sent]:
        if not piece:
            return []
        events = self._started_events()
        if self._open is None or self._open.item["type"] != "message":
            events += self._close()
            events += self._open_message()
        opened = self._open
        assert opened is not None
        opened.text.append(piece)
        ours = {"iaforall": self._pending} if self._pending else {}
        self._pending = {}
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=opened.item["id"],
                output_index=opened.index,
                content_index=0,
                delta=piece,
                logprobs=[],
                **ours,
            )
        )
        return events

    def _open_message(self) -> list[Sent]:
        item = message_item("", status="in_progress")
        part = item["content"][0]
        item["content"] = []
        self._open = _Open(len(self.output), item)
        self.output.append(item)
        index, item_id = self._open.index, item["id"]
        return [
            self._event("response.output_item.added", output_index=index, item=dict(item)),
            self._event(
                "response.content_part.added",
                item_id=item_id,
                output_index=index,
                content_index=0,
                part=part,
            ),
        ]

    def tool_call(
        self, index: int, call_id: str | None, name: str | None, arguments: str
    ) -> list[Sent]:
        """A piece of the call `index`: its first piece opens it (id and name), the others
        add to its arguments."""
        events = self._started_events()
        if index not in self._calls:
            events += self._close()
            item = function_call_item(
                call_id or new_item_id("call"), name or "", "", status="in_progress"
            )
            self._calls[index] = len(self.output)
            self._open = _Open(len(self.output), item)
            self.output.append(item)
            events.append(
                self._event(
                    "response.output_item.added", output_index=self._open.index, item=dict(item)
                )
            )
        opened = self._open
        if opened is None or opened.index != self._calls[index]:
            return events  # a late piece of a call already closed: its arguments are final
        if arguments:
            opened.text.append(arguments)
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=opened.item["id"],
                    output_index=opened.index,
                    delta=arguments,
                )
            )
        return events

    def _close(self) -> list[Sent]:
        opened, self._open = self._open, None
        if opened is None:
            return []
        index, item = opened.index, opened.item
        joined = "".join(opened.text)
        if item["type"] == "message":
            final = message_item(joined, item_id=item["id"])
            part = final["content"][0]
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            ours = {"iaforall": self._pending} if self._pending else {}
            self._pending = {}
            events = [
                self._event(
                    "response.output_text.done", **common, text=joined, logprobs=[], **ours
                ),
                self._event("response.content_part.done", **common, part=part),
            ]
        else:
            final = function_call_item(item["call_id"], item["name"], joined, item_id=item["id"])
            events = [
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=item["name"],
                    arguments=joined,
                )
            ]
        self.output[index] = final
        events.append(self._event("response.output_item.done", output_index=index, item=final))
        return events

    def finish(self, reason: str | None) -> None:
        self.finish_reason = reason or self.finish_reason

    def count(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> None:
        self.usage = token_usage(prompt_tokens, completion_tokens, cached_tokens)

    def completed(self) -> list[Sent]:
        """The last events once the model stopped: open items closed, then the Response
        (`incomplete` when it stopped at max_output_tokens)."""
        events = self._started_events()
        if not self.output:
            events += self._open_message()  # an empty answer is still one (empty) message
        events += self._close()
        extra = {"iaforall": self.extra} if self.extra else {}
        self.final = {**self.shell.finished(self.output, self.usage, self.finish_reason), **extra}
        kind = (
            "response.incomplete" if self.final["status"] == "incomplete" else "response.completed"
        )
        events.append(self._event(kind, response=self.final))
        return events

    def failed(self, error: IAForAllError) -> list[Sent]:
        """The model failed mid-way: an `error` event, then the Response as failed."""
        events = [self._event("error", code=error.code, message=error.message, param=error.param)]
        self.final = self._response(
            "failed",
            output=self._kept_output(),
            error={"code": _failure_code(error), "message": error.message},
        )
        events.append(self._event("response.failed", response=self.final))
        return events

    def _kept_output(self) -> Sequence[dict[str, Any]]:
        return [item for item in self.output if item.get("status") == "completed"]


def _failure_code(error: IAForAllError) -> str:
    """A failed Response's error code is one of OpenAI's few; ours is in the `error` event."""
    if error.status == 429:
        return "rate_limit_exceeded"
    return "invalid_prompt" if 400 <= error.status < 500 else "server_error"
