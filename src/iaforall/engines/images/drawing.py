"""The text-to-image pipeline itself, run in the worker process: CLIP's tokenizer, the text
encoder, `steps` UNet passes with Euler ancestral sampling, the VAE decoder; ONNX Runtime for
the three graphs, numpy for the rest. No classifier-free guidance: few-step models are distilled
to draw without it (one UNet pass per step)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from iaforall.engines.images.folder import LATENT_SCALE, VaeConfig
from iaforall.engines.images.sampler import EulerAncestral, NoiseSchedule
from iaforall.engines.images.tokenizer import ClipTokenizer

# Stable Diffusion's latent channels to RGB, roughly: a preview without the VAE (free).
PREVIEW_RGB = np.asarray(
    [
        [0.298, 0.207, 0.208],
        [0.187, 0.286, 0.173],
        [-0.158, 0.189, 0.264],
        [-0.184, -0.271, -0.473],
    ],
    dtype=np.float32,
)
_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
_INTS = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}

Pixels = NDArray[np.uint8]
# called after each step with (step, steps, the clean latent predicted); False: stop
OnStep = Callable[[int, int, NDArray[np.float32]], bool]


class Cancelled(Exception):
    """The drawing was stopped between two steps."""


@dataclass(frozen=True, slots=True)
class Graph:
    session: Any  # onnxruntime.InferenceSession
    inputs: dict[str, Any]  # name -> its NodeArg (type, shape)
    output: str

    def run(self, feeds: dict[str, NDArray[Any]]) -> NDArray[Any]:
        typed = {name: _as_input(value, self.inputs[name]) for name, value in feeds.items()}
        result: NDArray[Any] = self.session.run([self.output], typed)[0]
        return result


def _as_input(value: NDArray[Any], arg: Any) -> NDArray[Any]:
    kind = _TYPES.get(arg.type) or _INTS.get(arg.type)
    if kind is None:
        raise ValueError(f"input {arg.name} has an unsupported type {arg.type}")
    if isinstance(arg.shape, list) and len(arg.shape) == 0:
        value = value.reshape(())  # a scalar timestep
    return value.astype(kind, copy=False)


def _graph(path: Path, threads: int) -> Graph:
    import onnxruntime as ort  # type: ignore[import-untyped]  # no stubs (nor py.typed)

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return Graph(
        session, {arg.name: arg for arg in session.get_inputs()}, session.get_outputs()[0].name
    )


class Drawing:
    def __init__(self, folder: Path, threads: int) -> None:
        self.tokenizer = ClipTokenizer(folder / "tokenizer")
        self.schedule = NoiseSchedule.read(folder / "scheduler" / "scheduler_config.json")
        self.vae = VaeConfig.read(folder)
        self.text_encoder = _graph(folder / "text_encoder" / "model.onnx", threads)
        self.unet = _graph(folder / "unet" / "model.onnx", threads)
        self.decoder = _graph(folder / "vae_decoder" / "model.onnx", threads)
        for name in ("sample", "timestep", "encoder_hidden_states"):
            if name not in self.unet.inputs:
                raise ValueError(f"the UNet has no input '{name}'")
        if self.unet.inputs["sample"].type == "tensor(float16)":
            raise ValueError(
                "this export computes in float16, for GPUs: ONNX Runtime on a CPU needs a "
                "float32 one (`optimum-cli export onnx --model ID folder/`, docs/images.md)"
            )
        channels = self.unet.inputs["sample"].shape[1]
        self.channels = channels if isinstance(channels, int) else 4

    def draw(
        self, prompt: str, width: int, height: int, steps: int, seed: int, on_step: OnStep
    ) -> Pixels:
        """The image, HxWx3; Cancelled when `on_step` says to stop."""
        first = next(iter(self.text_encoder.inputs))
        embedded = self.text_encoder.run({first: self.tokenizer.ids(prompt)}).astype(np.float32)
        sampler = EulerAncestral(self.schedule, steps)
        noise = np.random.Generator(np.random.PCG64(seed))
        shape = (1, self.channels, height // LATENT_SCALE, width // LATENT_SCALE)
        latents = noise.standard_normal(shape, dtype=np.float32) * sampler.init_sigma
        for i, t in enumerate(sampler.timesteps):
            output = self.unet.run(
                {
                    "sample": sampler.scale(latents, i),
                    "timestep": np.asarray([t]),
                    "encoder_hidden_states": embedded,
                }
            ).astype(np.float32)
            latents, x0 = sampler.step(output, i, latents, noise.standard_normal(shape, np.float32))
            if not on_step(i + 1, len(sampler), x0):
                raise Cancelled
        return self.decode(latents)

    def decode(self, latents: NDArray[np.float32]) -> Pixels:
        first = next(iter(self.decoder.inputs))
        image = self.decoder.run({first: latents / self.vae.scaling_factor}).astype(np.float32)
        pixels = np.clip(image[0].transpose(1, 2, 0) / 2 + 0.5, 0, 1)
        picture: Pixels = (pixels * 255).round().astype(np.uint8)
        return picture


def preview(latent: NDArray[np.float32]) -> Pixels:
    """A rough picture of a latent (its channels mixed to RGB, scaled up 8x): a partial image
    for nearly nothing."""
    mixed = latent[0].transpose(1, 2, 0)
    if mixed.shape[-1] != PREVIEW_RGB.shape[0]:
        mixed = np.repeat(mixed.mean(axis=-1, keepdims=True), PREVIEW_RGB.shape[0], axis=-1)
    rgb = np.clip((mixed @ PREVIEW_RGB) / 2 + 0.5, 0, 1)
    big = rgb.repeat(LATENT_SCALE, axis=0).repeat(LATENT_SCALE, axis=1)
    picture: Pixels = (big * 255).round().astype(np.uint8)
    return picture
