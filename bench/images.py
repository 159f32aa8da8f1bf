"""Images out on this machine: the tiny pipeline measured, real models estimated on paper.

    .venv/bin/python bench/images.py [--threads 2] [--repeat 3] [--json]

A benchmark, not a test: it prints a table and exits 0 whatever the numbers are.

Measured (the real worker process, `engines/images/runtime.py`, on the tiny pipeline with random
weights that the tests use: `tests/images/tiny.py`):
- **seconds per image** at 512x512 with 1 and 4 steps (the fastest of `--repeat`: the least
  disturbed by other processes), PNG included;
- **per-step cost**: (17 steps - 1 step) / 16 (a tiny step is a few milliseconds: many of them
  are needed to see it past the decoder and the PNG);
- **peak memory** of the worker (its VmHWM, from /proc);
- **ONNX Runtime's throughput** here: a 320-channel 3x3 convolution on a 64x64 map (the shape of
  a Stable Diffusion UNet's first level) and a 128-channel one on 256x256 (a VAE decoder's),
  in GFLOP/s with `--threads` threads.

Estimated (a **paper estimate**, labelled as such: no real model can be downloaded here): the
seconds of a real model = its multiply-accumulates (MACs; 1 MAC = 2 FLOP) / the measured
throughput / an efficiency for whole networks (attention, normalisation and small layers run
slower than one large convolution; 0.6 assumed). MACs per part, at 512x512:
- SD-Turbo (SD 2.1 architecture): text encoder (OpenCLIP ViT-H, 354M parameters x 77 tokens)
  ~27 G; UNet ~339 G per step (BK-SDM, Kim et al. 2023, for SD's UNet at 512x512); VAE decoder
  ~312 G (same source);
- SDXS-512-0.9: the same text encoder ~27 G; its UNet (~330M parameters) ~125 G per step
  (SD's scaled by parameters: rough); its tiny decoder ~70 G (TAESD's layout counted by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.images.tiny import make_tiny_pipeline  # noqa: E402

from iaforall.engines.images.runtime import Ask, ImageRuntime  # noqa: E402

EFFICIENCY = 0.6  # a whole network's throughput against one large convolution's (assumed)


@dataclass(frozen=True)
class Model:
    name: str
    text_gmacs: float
    unet_gmacs: float  # per step
    decoder_gmacs: float
    weights_gb: float  # fp32 weights of the three graphs
    steps: tuple[int, ...]


MODELS = (
    Model("SD-Turbo", 27, 339, 312, 5.0, (1, 4)),
    Model("SDXS-512-0.9", 27, 125, 70, 2.7, (1,)),
)


def drawing_seconds(runtime: ImageRuntime, steps: int, repeat: int) -> float:
    times = []
    for seed in range(repeat):
        ask = Ask("a lighthouse at dusk", 512, 512, steps, seed, "png", 90)
        start = time.perf_counter()
        runtime.draw(ask, lambda _: None, threading.Event())
        times.append(time.perf_counter() - start)
    return min(times)


def measure(runtime: ImageRuntime, repeat: int) -> dict[str, float]:
    """Seconds per image (1 and 4 steps), per step, and the worker's peak memory."""
    start = time.perf_counter()
    runtime.draw(Ask("warm", 512, 512, 1, 0, "png", 90), lambda _: None, threading.Event())
    first = time.perf_counter() - start  # the worker's start and load included
    one = drawing_seconds(runtime, 1, repeat)
    four = drawing_seconds(runtime, 4, repeat)
    many = drawing_seconds(runtime, 17, repeat)
    pid = runtime.pid()
    peak = peak_memory(pid) if pid else 0
    asyncio.run(runtime.close())
    return {
        "first_image_s": round(first, 3),
        "image_1_step_s": round(one, 3),
        "image_4_steps_s": round(four, 3),
        "per_step_s": round((many - one) / 16, 4),
        "worker_peak_mb": round(peak / 1e6),
    }


def peak_memory(pid: int) -> int:
    """The process's peak resident memory (VmHWM), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def conv_gflops(channels: int, size: int, threads: int, repeat: int) -> float:
    """ONNX Runtime's GFLOP/s on one 3x3 convolution of `channels` at `size` x `size`."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).standard_normal((channels, channels, 3, 3), np.float32)
    shape = [1, channels, size, size]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options)
    x = np.random.default_rng(1).standard_normal(shape, np.float32)
    session.run(None, {"x": x})  # warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        session.run(None, {"x": x})
        times.append(time.perf_counter() - start)
    flop = 2 * channels * channels * 9 * size * size
    return flop / statistics.median(times) / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    measured = {}
    with tempfile.TemporaryDirectory() as tmp:
        # the tests' quick pipeline, and their slow one (~1.7 GFLOP a step at 512x512)
        for name, shape in (("tiny", {}), ("tiny-heavy", {"hidden": 64, "layers": 6})):
            folder = make_tiny_pipeline(Path(tmp) / name, **shape)
            measured[name] = measure(ImageRuntime(name, folder, args.threads, 120), args.repeat)
    unet_like = conv_gflops(320, 64, args.threads, args.repeat)
    decoder_like = conv_gflops(128, 256, args.threads, args.repeat)
    gflops = min(unet_like, decoder_like) * EFFICIENCY
    estimates = []
    for model in MODELS:
        for steps in model.steps:
            gmacs = model.text_gmacs + steps * model.unet_gmacs + model.decoder_gmacs
            estimates.append(
                {
                    "model": model.name,
                    "steps": steps,
                    "gmacs": gmacs,
                    "seconds_estimate": round(2 * gmacs / gflops, 1),
                    "memory_gb_estimate": round(model.weights_gb + 1.0, 1),
                }
            )
    result = {
        "threads": args.threads,
        **measured,
        "onnxruntime_gflops": {
            "unet_conv_320x64x64": round(unet_like, 1),
            "decoder_conv_128x256x256": round(decoder_like, 1),
            "assumed_network_efficiency": EFFICIENCY,
        },
        "paper_estimates": estimates,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name, tiny in measured.items():
        print(f"{name} pipeline (random weights), 512x512, {args.threads} threads, measured:")
        print(f"  first image (worker start and load included): {tiny['first_image_s']:.3f} s")
        print(f"  1 step: {tiny['image_1_step_s']:.3f} s; 4 steps: {tiny['image_4_steps_s']:.3f} s")
        print(
            f"  per step: {tiny['per_step_s'] * 1000:.1f} ms; "
            f"worker peak memory: {tiny['worker_peak_mb']:.0f} MB"
        )
    print(
        f"ONNX Runtime here: {unet_like:.1f} GFLOP/s (UNet-like conv), "
        f"{decoder_like:.1f} GFLOP/s (decoder-like conv), measured"
    )
    print(f"Paper ESTIMATES for real models (x{EFFICIENCY} efficiency assumed, not measured):")
    print(f"  {'model':<14} {'steps':>5} {'GMACs':>7} {'seconds':>8} {'memory GB':>10}")
    for row in estimates:
        print(
            f"  {row['model']:<14} {row['steps']:>5} {row['gmacs']:>7.0f} "
            f"{row['seconds_estimate']:>8.1f} {row['memory_gb_estimate']:>10.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
