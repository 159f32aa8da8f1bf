"""Prompt-lookup decoding never changes a greedy answer: the real SmolLM2, drafts on and off."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import xllamacpp

from iaforall.engines.llamacpp import worker
from iaforall.models.store import ModelStore
from tests.real_server import SMOL

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # 6 answers, twice the model

PASSAGE = (
    "The lighthouse of Ar-Men stands on a rock at the western tip of the Sein causeway, in "
    "Brittany. Building it took fourteen years, from 1867 to 1881, because the sea covered the "
    "rock most of the time and the workers could land only on a few calm days each summer. Its "
    "keepers called it hell among hells: storms cut them off for weeks, and waves broke over "
    "the lantern, thirty-three metres above the sea."
)
CODE = """def mean(values):
    total = 0
    for value in values:
        total = total + value
    return total / len(values)


def spread(values):
    return max(values) - min(values)
"""
# Log-probability gap under which the two likeliest tokens are a numerical tie. Measured: the
# drafted answers left the plain ones at gaps of 0.04 and 0.08, where the median step of these
# answers has a gap of 1-3 and only about 2 % of steps are under 0.1.
TIE = 0.15
PROMPTS = [
    f"Passage:\n{PASSAGE}\n\nQuote, word for word, the sentence of the passage that says how "
    "long building the lighthouse took.",
    f"```python\n{CODE}```\n\nRename `values` to `numbers` in this code and give the whole code.",
    "Write a Python function that checks whether a word is a palindrome.",
]


@dataclass(frozen=True)
class Answer:
    text: str
    steps: list[dict[str, Any]]  # with probs: each token and its top_logprobs


def answers(params: Any, *, probs: bool) -> tuple[list[Answer], int]:
    """The greedy answers to PROMPTS, and how many tokens were drafted; with `probs`, each
    answer's tokens and their two likeliest candidates."""
    server = xllamacpp.Server(params)
    out, drafted = [], 0
    with httpx.Client(base_url=server.listening_address, timeout=600) as client:
        for prompt in PROMPTS:
            body: dict[str, Any] = {
                "messages": [
                    {"role": "system", "content": ""},
                    {"role": "user", "content": prompt},
                ],
                "temperature": 0,
                "max_tokens": 160,  # drafts need room: at 40 tokens none was made
            }
            if probs:
                body |= {"logprobs": True, "top_logprobs": 2}
            reply = client.post("/v1/chat/completions", json=body).json()
            choice = reply["choices"][0]
            steps = (choice.get("logprobs") or {}).get("content") or []
            out.append(Answer(choice["message"]["content"], steps))
            drafted += int(reply["timings"].get("draft_n", 0))
    return out, drafted


def divergence(drafted: str, plain: Answer) -> tuple[float, str, str] | None:
    """Where a drafted answer first leaves the plain one: the plain step's gap between its two
    likeliest tokens (log-probabilities), the token taken there and the token the drafted
    answer went on with; None when the answers are the same."""
    if drafted == plain.text:
        return None
    at = next((i for i, (a, b) in enumerate(zip(drafted, plain.text, strict=False)) if a != b), 0)
    start = 0
    for step in plain.steps:
        end = start + len(step["token"])
        if end > at:
            top = step["top_logprobs"]
            taken, other = top[0], top[1]
            went_on = drafted[start:]
            gap = taken["logprob"] - other["logprob"]
            return (
                gap,
                taken["token"],
                other["token"] if went_on.startswith(other["token"]) else went_on[:12],
            )
        start = end
    return float("inf"), "", drafted[at : at + 12]


def test_drafts_change_a_greedy_answer_only_at_a_tie(tmp_path: Path) -> None:
    """Checking a draft evaluates several tokens in one batch, and llama.cpp's CPU kernels sum
    a batch in another order than one token (its issues #23335, #25618): a greedy answer can
    take the other of two tokens whose log-probabilities tie to the last bits, and then goes
    its own way. Anything more than such a tie would be a real change of the answer."""
    model = ModelStore(tmp_path, install_missing=False).pull_packaged(SMOL)
    argv = ["--model", str(model.path), "--alias", SMOL, "--threads", "2", "--parallel", "1"]
    argv += ["--ctx-per-slot", "2048", "--prompt-lookup"]
    with_drafts = worker.server_params(worker.parse(argv))
    without = worker.server_params(worker.parse(argv))
    without.speculative.types = [xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NONE]

    drafted_answers, drafted = answers(with_drafts, probs=False)
    plain_answers, none = answers(without, probs=True)

    assert drafted > 0 and none == 0  # the drafts were made, and checked
    same = 0
    for prompt, mine, plain in zip(PROMPTS, drafted_answers, plain_answers, strict=True):
        split = divergence(mine.text, plain)
        if split is None:
            same += 1
            continue
        gap, taken, other = split
        assert gap <= TIE and other, f"{prompt[:40]!r}: {taken!r} vs {other!r}, gap {gap:.4f}"
    assert same >= len(PROMPTS) // 2  # most answers are the same bytes
