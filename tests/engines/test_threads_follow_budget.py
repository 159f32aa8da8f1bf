"""A real llama.cpp worker restarts, between jobs, with the threads the CPU budget gives them:
the real SmolLM2 in the real pool, its worker's command line read from /proc."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from iaforall.core.types import ChatRequest, ModelId, Sampling
from iaforall.engines import pool as pool_module
from iaforall.engines.llamacpp.factory import llamacpp_factory
from iaforall.engines.pool import EnginePool
from iaforall.models.store import ModelStore
from iaforall.settings import EngineSettings
from tests.real_server import SMOL, start_server, stop_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def worker_threads(pid: int) -> int:
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return int(args[args.index(b"--threads") + 1])


async def test_an_idle_worker_restarts_with_the_budget_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "GROW_AFTER_S", 0.0)  # grow back at once
    store = ModelStore(tmp_path, install_missing=False)
    model = ModelId(store.pull_packaged(SMOL).name)
    settings = EngineSettings(threads=0, parallel=1, context_length=1024)
    pool = EnginePool(
        store,
        llamacpp_factory(settings, tmp_path / "logs", read_timeout=120),
        slots=1,
        context_length=1024,
        keep_alive=-1,
        threads=2,
        follow_budget=True,
    )
    question = ChatRequest(
        model,
        ({"role": "user", "content": "Name three colours."},),
        sampling=Sampling(max_tokens=24, temperature=0),
    )
    try:
        answers, threads = [], []
        for given in (2, 1, 1, 2, 2):  # more threads at the second job in a row given them
            async with pool.use(model, given) as engine:
                pid = (await engine.stats())["pid"]
                threads.append((pid, worker_threads(pid)))
                reply = await engine.generate(question)
                answers.append(reply["choices"][0]["message"]["content"])
        assert [t for _, t in threads] == [2, 1, 1, 1, 2]
        pids = [p for p, _ in threads]
        # A restart for each new count, none for the same count or a first job given more.
        assert pids[1] != pids[0] and pids[2] == pids[1] == pids[3] and pids[4] != pids[3]
        # Each row of a product is one thread's sum: the same answer.
        assert len(set(answers)) == 1, answers
    finally:
        await pool.close()


def test_the_server_runs_its_worker_on_the_cores_of_its_budget(
    model_home: Path, tmp_path: Path
) -> None:
    """`iaforall serve` with threads left to the machine and a budget of one core: the chat's
    worker runs one thread (two would spin against whatever holds the other core)."""
    server = start_server(
        model_home, tmp_path / "server.log", IAFORALL_THREADS="0", IAFORALL_CPU_CORES="1"
    )
    try:
        body = {"model": SMOL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
        assert httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=120).is_success
        workers = [
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and _is_worker_of(p, server.process.pid)
        ]
        assert [worker_threads(w) for w in workers] == [1]
    finally:
        stop_server(server)


def _is_worker_of(proc: Path, parent: int) -> bool:
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    return int(stat[stat.rindex(")") + 2 :].split()[1]) == parent and b"llamacpp.worker" in cmdline
