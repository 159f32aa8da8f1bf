"""The image runtime on its own (no HTTP): its worker draws, stops between two steps when told,
and after a `kill -9` fails the drawing cleanly and starts again on the next one."""

from __future__ import annotations

import io
import os
import signal
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from iaforall.core.errors import EngineUnavailable
from iaforall.engines.images.runtime import Ask, Heard, ImageRuntime, Step
from iaforall.engines.protocol import EngineState
from tests.images.tiny import make_tiny_pipeline

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
async def runtime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ImageRuntime]:
    folder = make_tiny_pipeline(tmp_path_factory.mktemp("rt") / "slow", hidden=48, layers=4)
    made = ImageRuntime("slow:latest", folder, threads=2, timeout=60)
    yield made
    await made.close()


def ask(steps: int, seed: int = 1) -> Ask:
    return Ask("a boat", 256, 256, steps, seed, "png", 90)


async def test_it_declares_its_threads_and_memory_and_starts_its_worker(
    runtime: ImageRuntime,
) -> None:
    assert runtime.capabilities.kind == "image" and runtime.capabilities.threads == 2
    assert runtime.capabilities.memory > 1024**3  # the weights and the activations' allowance
    await runtime.start()
    assert runtime.state is EngineState.READY and runtime.pid() != os.getpid()


async def test_it_draws_and_says_each_step(runtime: ImageRuntime) -> None:
    heard: list[Heard] = []
    data = runtime.draw(ask(3), heard.append, threading.Event())
    assert Image.open(io.BytesIO(data)).size == (256, 256)
    assert heard == [Step(1, 3), Step(2, 3), Step(3, 3)]


async def test_a_stop_ends_the_drawing_between_two_steps(runtime: ImageRuntime) -> None:
    stop = threading.Event()
    before = runtime.cancelled

    def heard(said: Heard) -> None:
        stop.set()  # as the client leaves during the first step

    assert runtime.draw(ask(50), heard, stop) == b""
    assert runtime.cancelled == before + 1 and runtime.last_steps < 50
    assert runtime.draw(ask(1), lambda _: None, threading.Event())  # the same worker goes on


async def test_a_killed_worker_fails_the_drawing_and_the_next_one_starts_it_again(
    runtime: ImageRuntime,
) -> None:
    await runtime.start()
    pid = runtime.pid()
    assert pid is not None

    def heard(said: Heard) -> None:
        if said == Step(1, 50):
            os.kill(pid, signal.SIGKILL)

    with pytest.raises(EngineUnavailable, match="stopped while drawing"):
        runtime.draw(ask(50), heard, threading.Event())
    assert runtime.state is EngineState.STOPPED
    assert runtime.draw(ask(1), lambda _: None, threading.Event())
    assert runtime.pid() not in (None, pid)


def test_a_folder_that_cannot_load_is_a_clean_error(tmp_path: Path) -> None:
    folder = make_tiny_pipeline(tmp_path / "bad")
    (folder / "unet" / "model.onnx").write_bytes(b"not a graph")
    broken = ImageRuntime("bad:latest", folder, threads=1, timeout=60)
    with pytest.raises(EngineUnavailable, match="could not be loaded"):
        broken.draw(ask(1), lambda _: None, threading.Event())


def test_a_float16_export_is_refused_with_what_to_do(tmp_path: Path) -> None:
    import onnx

    folder = make_tiny_pipeline(tmp_path / "half")
    unet = onnx.load(str(folder / "unet" / "model.onnx"))  # its sample read as float16
    for node in unet.graph.node:
        node.input[:] = ["sample32" if n == "sample" else n for n in node.input]
    cast = onnx.helper.make_node("Cast", ["sample"], ["sample32"], to=onnx.TensorProto.FLOAT)
    unet.graph.node.insert(0, cast)
    unet.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    onnx.save(unet, str(folder / "unet" / "model.onnx"))
    half = ImageRuntime("half:latest", folder, threads=1, timeout=60)
    with pytest.raises(EngineUnavailable, match="float32 one"):
        half.draw(ask(1), lambda _: None, threading.Event())
