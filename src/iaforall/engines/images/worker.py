"""The image worker: one text-to-image model loaded, drawing one picture at a time.

Run by the server (`runtime.py`) as `python -m iaforall.engines.images.worker --folder F
--threads N`; it speaks `protocol.py`'s JSON lines on stdin and stdout. A reader thread takes the
lines as they come, so a cancel reaches a drawing between two steps. A crash or an out-of-memory
here ends only this process.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from iaforall.engines.images.drawing import Cancelled, Drawing, preview
from iaforall.engines.images.protocol import encoded


class Worker:
    def __init__(self, drawing: Drawing) -> None:
        self.drawing = drawing
        self.jobs: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.cancelled: set[int] = set()
        self.lock = threading.Lock()

    def say(self, line: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    def read(self) -> None:
        """Lines from stdin: drawings queued, cancels noted at once; None at the end."""
        for raw in sys.stdin:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if "cancel" in line:
                with self.lock:
                    self.cancelled.add(int(line["cancel"]))
            else:
                self.jobs.put(line)
        self.jobs.put(None)

    def serve(self) -> None:
        threading.Thread(target=self.read, daemon=True).start()
        while (job := self.jobs.get()) is not None:
            self.do(job)

    def do(self, job: dict[str, Any]) -> None:
        ident = int(job["id"])
        previews = int(job.get("previews", 0))
        steps = int(job["steps"])
        # the steps after which a preview is sent: evenly spread, the last step's excluded
        shown = {round((k + 1) * steps / (previews + 1)) for k in range(previews)} - {steps, 0}
        sent = 0

        def on_step(step: int, of: int, x0: NDArray[np.float32]) -> bool:
            nonlocal sent
            with self.lock:
                if ident in self.cancelled:
                    return False
            self.say({"id": ident, "step": step, "steps": of})
            if step in shown:
                data = encoded(preview(x0), job.get("format", "png"), int(job.get("quality", 90)))
                self.say({"id": ident, "preview": base64.b64encode(data).decode(), "index": sent})
                sent += 1
            return True

        try:
            pixels = self.drawing.draw(
                str(job["prompt"]),
                int(job["width"]),
                int(job["height"]),
                steps,
                int(job["seed"]),
                on_step,
            )
            data = encoded(pixels, job.get("format", "png"), int(job.get("quality", 90)))
            self.say({"id": ident, "image": base64.b64encode(data).decode()})
        except Cancelled:
            self.say({"id": ident, "cancelled": True})
        except Exception as exc:  # the drawing failed: said to the server, the worker goes on
            self.say({"id": ident, "error": f"{type(exc).__name__}: {exc}"})
        finally:
            with self.lock:
                self.cancelled.discard(ident)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iaforall-image-worker")
    parser.add_argument("--folder", required=True, type=Path)
    parser.add_argument("--threads", required=True, type=int)
    args = parser.parse_args(argv)
    try:
        drawing = Drawing(args.folder, args.threads)
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    worker = Worker(drawing)
    worker.say({"ready": True, "pid": os.getpid()})
    worker.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
