"""The CPU budget in the real app (real HTTP, fake engines): on a 2-core budget a chat generation
(its worker's two threads) and a transcription (Whisper's two threads) never run at once; the one
that comes second waits in the one line, sees its place, and both finish."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from iaforall.app import create_app
from iaforall.cli.ps import cpu_line, ps
from iaforall.core.types import ModelId
from iaforall.engines import whisper
from iaforall.engines.protocol import EngineState
from iaforall.engines.runtime import Runtimes, RuntimeSpec
from iaforall.engines.whisper import Run
from iaforall.engines.whisper.runtime import WhisperRuntime
from iaforall.scheduling.loop import Scheduler
from iaforall.settings import EngineSettings, ServerSettings, Settings
from tests.conftest import FakeWorld, fake_settings, served, stock_store

EAR = "whisper:tiny.en"
CHAT = ModelId("tiny:latest")
pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(EAR not in whisper.installed(), reason=f"{EAR} is not installed"),
]


@dataclass
class Piece:
    start: float
    end: float
    text: str
    tokens: list[int] = field(default_factory=lambda: [1, 2])
    temperature: float = 0.0
    avg_logprob: float = -0.1
    compression_ratio: float = 1.0
    no_speech_prob: float = 0.0


class FakeWhisper(WhisperRuntime):
    """Whisper's threads and choices, without the model: each segment takes `pace` seconds."""

    def __init__(self, home: Path, pace: float) -> None:
        super().__init__(whisper.MODELS[EAR], home, threads=2)
        self.pace = pace
        self.running = False
        self.given: list[int] = []  # threads each job was given

    @property
    def state(self) -> EngineState:
        return EngineState.READY

    async def start(self) -> None:
        pass

    def begin(self, audio: Any, *, threads: int = 0, **_: Any) -> Run:
        self.given.append(threads)

        def found() -> Iterator[Piece]:
            self.running = True
            try:
                for i in range(5):
                    time.sleep(self.pace)
                    yield Piece(i * 0.2, (i + 1) * 0.2, f" word{i}")
            finally:
                self.running = False

        return Run(EAR, "en", 1.0, found())


@dataclass
class Budgeted:
    url: str
    client: httpx.AsyncClient
    world: FakeWorld
    ear: FakeWhisper
    scheduler: Scheduler


@pytest.fixture
async def budgeted(tmp_path: Path) -> AsyncIterator[Budgeted]:
    stock_store(tmp_path)
    settings = fake_settings(
        tmp_path, max_queue=4, queue_timeout=20, cpu_cores=2, max_active_models=0
    )
    settings.engine = EngineSettings(parallel=1, context_length=2048, keep_alive=300, threads=2)
    world = FakeWorld(client=httpx.AsyncClient(), delay=0.03)
    ear = FakeWhisper(tmp_path, pace=0.05)
    runtimes = Runtimes([RuntimeSpec(ModelId(EAR), "speech_to_text", lambda: ear)])
    app = create_app(settings, factory=world.factory, runtimes=runtimes)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        world.client = client
        yield Budgeted(url, client, world, ear, app.state.services.scheduler)


@pytest.fixture
def wav(tmp_path: Path) -> bytes:
    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 16000)
    return path.read_bytes()


def transcribe(b: Budgeted, wav: bytes) -> Any:
    return b.client.post(
        "/v1/audio/transcriptions",
        data={"model": EAR},
        files={"file": ("a.wav", wav, "audio/wav")},
    )


def chat(b: Budgeted) -> Any:
    return b.client.post(
        "/v1/chat/completions",
        json={"model": CHAT, "messages": [{"role": "user", "content": "a b c d e f g h i j"}]},
    )


async def watch(b: Budgeted, stop: threading.Event, seen: list[str]) -> None:
    """Every few milliseconds: never both at once, never more threads than cores."""
    while not stop.is_set():
        engine = b.world.engines.get(CHAT)
        generating = engine is not None and engine.active > 0
        if generating and b.ear.running:
            seen.append("both at once")
        if b.scheduler.cpu().in_use > 2:
            seen.append(f"{b.scheduler.cpu().in_use} threads in use")
        await asyncio.sleep(0.003)


async def until(check: Any) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


@pytest.mark.parametrize("first", ["chat", "transcription"])
async def test_chat_and_transcription_take_turns_on_two_cores(
    budgeted: Budgeted, wav: bytes, first: str
) -> None:
    b = budgeted
    await b.client.post("/api/generate", json={"model": CHAT})  # loaded, so its engine exists
    engine = b.world.engines[str(CHAT)]
    engine.delay = 0.03
    engine.enqueue(*[f"w{i} " for i in range(12)])
    stop, seen = threading.Event(), []
    watcher = asyncio.create_task(watch(b, stop, seen))
    try:
        if first == "chat":
            one = asyncio.create_task(chat(b))
            await until(lambda: engine.active > 0)
            two = asyncio.create_task(transcribe(b, wav))
        else:
            one = asyncio.create_task(transcribe(b, wav))
            await until(lambda: b.ear.running)
            two = asyncio.create_task(chat(b))
        await until(lambda: b.scheduler.queue_length == 1)  # the second waits, in line
        first_done, second = await one, await two
    finally:
        stop.set()
        await watcher
    assert first_done.status_code == 200 and second.status_code == 200
    assert first_done.headers["x-iaforall-queue-position"] == "0"
    assert second.headers["x-iaforall-queue-position"] == "1"  # it was told its place
    assert seen == []
    assert b.ear.given == [2]  # the whole budget, once free (never squeezed beside the chat)
    assert b.scheduler.cpu().in_use == 0


async def test_health_ps_and_the_admin_queue_show_the_budget_and_who_holds_it(
    budgeted: Budgeted, wav: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    b = budgeted
    await b.client.post("/api/generate", json={"model": CHAT})
    engine = b.world.engines[str(CHAT)]
    engine.enqueue(*[f"w{i} " for i in range(30)])
    answer = asyncio.create_task(chat(b))
    await until(lambda: engine.active > 0)
    waiting = asyncio.create_task(transcribe(b, wav))
    await until(lambda: b.scheduler.queue_length == 1)

    health = (await b.client.get("/health")).json()  # loopback without accounts: the admin
    assert health["cpu_budget"] == {
        "cores": 2,
        "in_use": 2,
        "others_busy": None,  # IAFORALL_CPU_CORES is set: the budget does not follow them
        "worker_restarts": 0,
        "holders": [{"name": CHAT, "threads": 2, "jobs": 1}],
    }
    assert [m["threads"] for m in health["models"]] == [2]
    queue = (await b.client.get("/admin/api/queue")).json()
    assert queue["cpu_budget"] == health["cpu_budget"]
    assert [(p["model"], p["position"], p["threads"]) for p in queue["places"]] == [
        (CHAT, 0, 2),
        (EAR, 1, 0),
    ]
    port = int(b.url.rsplit(":", 1)[1])
    settings = Settings(server=ServerSettings(port=port))
    assert await asyncio.to_thread(ps, settings) == 0
    shown = capsys.readouterr().out
    assert "CPU budget: 2 of 2 cores in use (tiny:latest 2 threads, 1 job)" in shown
    assert "THREADS" in shown

    assert (await answer).status_code == 200 and (await waiting).status_code == 200
    health = (await b.client.get("/health")).json()
    assert health["cpu_budget"] == {
        "cores": 2,
        "in_use": 0,
        "others_busy": None,
        "worker_restarts": 0,
        "holders": [],
    }


def test_the_cpu_line_names_each_holder() -> None:
    cpu = {
        "cores": 4,
        "in_use": 3,
        "holders": [
            {"name": "tiny", "threads": 2, "jobs": 2},
            {"name": "tts-1", "threads": 1, "jobs": 1},
        ],
    }
    assert cpu_line(cpu) == (
        "CPU budget: 3 of 4 cores in use (tiny 2 threads, 2 jobs; tts-1 1 thread, 1 job)"
    )
    assert cpu_line({"cores": 2, "in_use": 0, "holders": []}) == "CPU budget: 0 of 2 cores in use"
    assert cpu_line({"cores": 1, "in_use": 0, "holders": [], "others_busy": 0.93}) == (
        "CPU budget: 0 of 1 cores in use; other programs keep 0.9 cores busy"
    )
    assert cpu_line({"cores": 2, "in_use": 0, "worker_restarts": 3}) == (
        "CPU budget: 0 of 2 cores in use; chat workers restarted 3 times to fit it"
    )


async def test_left_to_the_machine_the_budget_follows_other_programs(tmp_path: Path) -> None:
    stock_store(tmp_path)
    world = FakeWorld(client=httpx.AsyncClient())
    app = create_app(fake_settings(tmp_path, cpu_cores=0), factory=world.factory)  # the default
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        cpu = (await client.get("/health")).json()["cpu_budget"]
        assert 1 <= cpu["cores"] <= len(os.sched_getaffinity(0))
        assert isinstance(cpu["others_busy"], float) and cpu["others_busy"] >= 0
