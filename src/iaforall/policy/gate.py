"""Where the request path meets the rules: `Policy.check_input` before a request is queued,
`Policy.check_output` on the completed answer. Every decision is logged and returned; a
`block` raises `PolicyBlocked`, which names the rule. No rules: nothing is done, nothing added.
A text longer than the rules read (`rules_max_chars`) is refused whole (`TooLongForRules`):
reading only part of it would let padding carry anything past a rule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal

from iaforall.core.errors import IAForAllError, PayloadTooLarge
from iaforall.core.types import ChatRequest, GenerationRequest, UserId
from iaforall.policy.engine import Checked, Decision, blocking, evaluate
from iaforall.policy.rules import Rules, Stage
from iaforall.store.audit import AuditLog, AuditRecord

RequestKind = Literal["chat", "completion", "web", "image"]

# Input is what people write: the user's messages, and the system and developer messages a
# client sends with them. Answers and tool results in the history are checked as output when
# they are produced, not again each time they are sent back.
INPUT_ROLES = frozenset({"user", "system", "developer"})


class PolicyBlocked(IAForAllError):
    """A published rule refused the request or the answer.

    403: the request is well formed (not 400) and the client is known (not 401), but the
    operator's rule forbids it; sending it again will not help, and clients do not retry a 403.
    """

    status = 403
    code = "policy_blocked"
    type = "invalid_request_error"

    def __init__(self, decisions: Sequence[Decision]) -> None:
        blocks = blocking(decisions) or list(decisions)
        first = blocks[0]
        others = len({d.rule_id for d in blocks}) - 1
        more = f" (and {others} other rule(s))" if others > 0 else ""
        what = "The request was refused" if first.stage == "input" else "The answer was withheld"
        said = first.description
        said += "" if said.endswith((".", "!", "?", "…")) else "."
        super().__init__(
            f"{what} by the server's published rule '{first.rule_id}'{more}: {said} "
            "The rules are listed at /v1/policy."
        )
        self.decisions = tuple(decisions)

    @property
    def extra(self) -> dict[str, Any]:
        """Fields added next to "error" in the response body."""
        return {"iaforall": {"decisions": [d.public() for d in self.decisions]}}


class TooLongForRules(PayloadTooLarge):
    """More text than the rules read: refused whole rather than checked in part."""

    code = "too_long_for_rules"

    def __init__(self, stage: Stage, length: int, limit: int) -> None:
        what, shorter = (
            ("The request was refused: its text", "Send a shorter text.")
            if stage == "input"
            else ("The answer was withheld: it", "Ask for a shorter answer (max_tokens).")
        )
        super().__init__(
            f"{what} is {length:,} characters long, and the server's published rules read at "
            f"most {limit:,} (setting IAFORALL_RULES_MAX_CHARS); it is not checked in part. "
            f"{shorter} The rules are listed at /v1/policy."
        )


def input_texts(request: GenerationRequest) -> list[Checked]:
    if not isinstance(request, ChatRequest):
        return [Checked("prompt", request.prompt)]
    found = []
    for i, message in enumerate(request.messages):
        if message.get("role") in INPUT_ROLES:
            text = text_of(message.get("content"))
            if text:
                found.append(Checked(f"messages[{i}]", text))
    return found


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


class Policy:
    def __init__(self, rules: Rules, audit: AuditLog, *, max_chars: int) -> None:
        self.rules = rules
        self._audit = audit
        self._max_chars = max_chars  # PolicySettings.rules_max_chars

    async def check_input(
        self, request: GenerationRequest, *, kind: RequestKind, language: str | None = None
    ) -> list[Decision]:
        """The decisions on what the client sent; PolicyBlocked if a rule blocks it."""
        if not self.rules.for_stage("input"):
            return []
        return await self._decide(
            "input", input_texts(request), request.user, request.model, kind, language
        )

    async def check_output(
        self,
        text: str,
        request: GenerationRequest,
        *,
        kind: RequestKind,
        language: str | None = None,
    ) -> list[Decision]:
        """The decisions on a completed answer; PolicyBlocked if a rule blocks it."""
        if not self.rules.for_stage("output"):
            return []
        return await self._decide(
            "output", [Checked("output", text)], request.user, request.model, kind, language
        )

    async def _decide(
        self,
        stage: Stage,
        texts: list[Checked],
        user: UserId,
        model: str,
        kind: RequestKind,
        language: str | None,
    ) -> list[Decision]:
        length = sum(len(t.text) for t in texts)
        if length > self._max_chars:
            raise TooLongForRules(stage, length, self._max_chars)
        decisions = await asyncio.to_thread(evaluate, self.rules, texts, stage, language)
        if not decisions:
            return []
        records = [record(d, user, model, kind) for d in decisions]
        await asyncio.to_thread(self._audit.add, records)
        if blocking(decisions):
            raise PolicyBlocked(decisions)
        return decisions


def record(decision: Decision, user: str, model: str | None, kind: str) -> AuditRecord:
    return AuditRecord(
        user=user,
        rule_id=decision.rule_id,
        description=decision.description,
        action=decision.action,
        stage=decision.stage,
        where=decision.where,
        excerpt=decision.excerpt,
        model=model,
        kind=kind,
    )


def decisions_field(decisions: Sequence[Decision]) -> dict[str, Any]:
    """What an answer carries under "iaforall" so the user sees every warn and log decision."""
    return {"decisions": [d.public() for d in decisions]} if decisions else {}
