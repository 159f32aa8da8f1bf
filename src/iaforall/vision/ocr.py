"""Read the text in an image with rapidocr (PP-OCR ONNX models it ships; English and French).

A runtime like the others (engines/runtime.py): the server's one engine for images in chat is
made by the registry and closed with the app; the document reader's child process makes its
own. Loaded on first use; one recognition at a time, since each uses every core.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from typing import Any

import numpy as np
from PIL import Image

from iaforall.core.types import ModelId, UserId
from iaforall.engines.protocol import EngineState
from iaforall.engines.runtime import RuntimeCapabilities, Runtimes
from iaforall.scheduling.loop import Scheduler
from iaforall.settings import available_cores

NAME = "rapidocr"
# An image's share of the machine in the scheduler's fair shares, in generated-token
# equivalents: about a second of every core, what a small chat model's 40 tokens take.
IMAGE_COST = 40.0


def installed() -> bool:
    return importlib.util.find_spec("rapidocr") is not None


class RapidOcr:
    model = ModelId(NAME)

    def __init__(self, threads: int = 0) -> None:
        """`threads`: onnxruntime's intra-op threads (0: every core), what a job holds of the
        CPU budget; set explicitly, since onnxruntime's own default may differ."""
        threads = max(1, threads or available_cores())
        self.capabilities = RuntimeCapabilities("ocr", threads=threads)
        self._engine: Any = None
        self._lock = threading.Lock()

    @property
    def state(self) -> EngineState:
        return EngineState.STOPPED if self._engine is None else EngineState.READY

    def _loaded(self) -> Any:
        if self._engine is None:
            from rapidocr import RapidOCR  # slow import; only when an image comes

            # No per-line orientation classifier: text lines are upright in scans and photos of
            # pages, and skipping it read 3-page scans 25% faster and more completely (it
            # flipped some lines).
            threads = self.capabilities.threads
            self._engine = RapidOCR(
                params={
                    "Global.log_level": "warning",
                    "Global.use_cls": False,
                    "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                }
            )
        return self._engine

    def lines(self, image: Image.Image) -> list[str]:
        """The lines of text found, top to bottom; empty when there is none. Blocks (~1 s)."""
        with self._lock:
            result = self._loaded()(np.asarray(image))
        return [str(t) for t in (result.txts or ())]

    async def read(
        self, image: Image.Image, *, user: UserId | None = None, weight: float = 1.0
    ) -> list[str]:
        """In a thread, at once (no line: see `RegisteredOcr` for the app's)."""
        return await asyncio.to_thread(self.lines, image)

    async def start(self) -> None:
        def load() -> None:
            with self._lock:
                self._loaded()

        await asyncio.to_thread(load)

    async def stats(self) -> dict[str, Any]:
        return {"threads": self.capabilities.threads}

    async def close(self) -> None:
        with self._lock:
            self._engine = None


class RegisteredOcr:
    """The app's OCR: the registry's runtime, made and started on the first image; an image read
    for someone takes its turn in the scheduler's line (fair shares, one model active at a time:
    it uses every core), silently, as part of their chat request."""

    def __init__(self, runtimes: Runtimes, scheduler: Scheduler) -> None:
        self._runtimes = runtimes
        self._scheduler = scheduler

    async def read(
        self, image: Image.Image, *, user: UserId | None = None, weight: float = 1.0
    ) -> list[str]:
        if user is None:
            return await self._read(image)
        async with self._scheduler.slot(ModelId(NAME), user, weight=weight, cost=IMAGE_COST):
            return await self._read(image)

    async def _read(self, image: Image.Image) -> list[str]:
        runtime = await self._runtimes.ready(NAME)
        assert isinstance(runtime, RapidOcr)
        return await runtime.read(image)
