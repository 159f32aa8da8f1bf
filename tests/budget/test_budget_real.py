"""The memory budget on the real server: two packaged models that do not fit together take
turns, and /api/ps shows the swap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.real_server import QWEN, SMOL, RealServer, start_server, stop_server

# With 2048 tokens x 1 slot, smollm2:135m is counted ~213 MB and qwen2.5-coder:0.5b ~584 MB:
# each fits in 700 MiB (734 MB), both (797 MB) do not.
BUDGET_MB = 700


@pytest.fixture(scope="module")
def budget_server(
    model_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealServer]:
    log = tmp_path_factory.mktemp("logs") / "budget.log"
    real = start_server(
        model_home, log, IAFORALL_PARALLEL="1", IAFORALL_MEMORY_BUDGET_MB=str(BUDGET_MB)
    )
    yield real
    stop_server(real)


def test_two_models_alternate_within_the_budget(budget_server: RealServer) -> None:
    url = budget_server.url
    pids = []
    for model in (QWEN, SMOL, QWEN):
        answer = httpx.post(
            f"{url}/api/generate",
            json={
                "model": model,
                "prompt": "Say hi.",
                "stream": False,
                "options": {"num_predict": 4},
            },
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["done"] is True and answer.json()["eval_count"] >= 1
        resident = httpx.get(f"{url}/api/ps", timeout=5).json()["models"]
        assert [m["name"] for m in resident] == [model]  # the other one made room
        assert 0 < resident[0]["size"] <= BUDGET_MB * 1024 * 1024
        health = budget_server.health()
        assert health["memory_budget"]["used"] <= health["memory_budget"]["bytes"]
        pids.append(budget_server.worker_pid(model))
    assert pids[0] != pids[2]  # qwen was unloaded for smollm2, then loaded again
