"""Model swaps under the memory budget: how long to swap, and the first token after a swap.

A real server (`iaforall serve`, in its own process) gets a memory budget that holds one of the
two packaged models but not both (smollm2:135m and qwen2.5-coder:0.5b at 2048 tokens x 1
slot), so asking for the other one unloads the first. For each direction, `--rounds` times:

- **swap**: a load-only request (`/api/generate` without a prompt, as Ollama's clients load a
  model): the resident model is unloaded and the other loaded, until it is ready;
- **first token after a swap**: a streamed `/api/generate` for the model not resident, from the
  request to the first token (swap + prompt + first token);
- **first token warm**: the same request again, the model resident, for comparison.

    .venv/bin/python bench/swap.py [--rounds 3] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from iaforall.models.store import ModelStore

SMOL, QWEN = "smollm2:135m", "qwen2.5-coder:0.5b"
BUDGET_MB = 700  # with 2048 x 1: smollm2 ~213 MB, qwen ~584 MB; one fits, not both
PROMPT = "Write one short sentence about the sea."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(home: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "IAFORALL_HOME": str(home),
        "IAFORALL_MODEL": SMOL,
        "IAFORALL_PRELOAD": "false",
        "IAFORALL_THREADS": str(threads),
        "IAFORALL_PARALLEL": "1",
        "IAFORALL_CONTEXT_LENGTH": "2048",
        "IAFORALL_MEMORY_BUDGET_MB": str(BUDGET_MB),
        "IAFORALL_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "iaforall", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
    raise SystemExit("the server did not start")


def resident(client: httpx.Client) -> list[str]:
    return [m["name"] for m in client.get("/api/ps").json()["models"]]


def load(client: httpx.Client, model: str) -> float:
    began = time.perf_counter()
    answer = client.post("/api/generate", json={"model": model})
    answer.raise_for_status()
    assert answer.json()["done_reason"] == "load", answer.text
    return time.perf_counter() - began


def first_token(client: httpx.Client, model: str) -> float:
    began = time.perf_counter()
    body = {"model": model, "prompt": PROMPT, "options": {"num_predict": 8, "temperature": 0}}
    with client.stream("POST", "/api/generate", json=body) as answer:
        answer.raise_for_status()
        took = None
        for line in answer.iter_lines():
            event = json.loads(line)
            if "error" in event:
                raise SystemExit(event["error"])
            if took is None and event.get("response"):
                took = time.perf_counter() - began
    assert took is not None, "no token"
    return took


def ms(values: list[float]) -> str:
    median, low, high = (
        round(v * 1000) for v in (statistics.median(values), min(values), max(values))
    )
    return f"median {median} ms (min {low}, max {high})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--home", type=Path, help="an IAForAll home to reuse (default: a temp one)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="iaforall-swap-"))
    store = ModelStore(home, install_missing=False)
    sizes = {name: store.pull_packaged(name).size for name in (SMOL, QWEN)}
    process, url = start(home, args.threads)
    results: dict[str, dict[str, list[float]]] = {
        m: {"swap": [], "ttft_after_swap": [], "ttft_warm": []} for m in (SMOL, QWEN)
    }
    try:
        with httpx.Client(base_url=url, timeout=300) as client:
            first_token(client, SMOL)  # warm the page cache for both files, untimed
            first_token(client, QWEN)
            for _ in range(args.rounds):
                for model, other in ((QWEN, SMOL), (SMOL, QWEN)):
                    if resident(client) != [other]:
                        load(client, other)  # untimed: start from the other one resident
                    results[model]["swap"].append(load(client, model))
                    assert resident(client) == [model]
                    load(client, other)  # back, untimed, so the next one is a swap again
                    results[model]["ttft_after_swap"].append(first_token(client, model))
                    results[model]["ttft_warm"].append(first_token(client, model))
                    load(client, other)
            sizes_ps = {m["name"]: m["size"] for m in client.get("/api/ps").json()["models"]}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
    print(
        f"# swap under a {BUDGET_MB} MiB budget, {args.rounds} rounds each way; "
        f"{os.cpu_count()} cores, {args.threads} threads, {platform.platform()}, "
        "2048 tokens x 1 slot, files in the page cache"
    )
    for model in (SMOL, QWEN):
        r = results[model]
        print(f"{model} (file {sizes[model] / 1e6:.0f} MB)")
        print(f"  swap to it (unload the other, load it): {ms(r['swap'])}")
        print(f"  first token after a swap:               {ms(r['ttft_after_swap'])}")
        print(f"  first token, already loaded:            {ms(r['ttft_warm'])}")
    print(f"budgeted sizes seen in /api/ps: {sizes_ps}")


if __name__ == "__main__":
    main()
