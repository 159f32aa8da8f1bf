"""Euler ancestral sampling in numpy: the scheduler few-step models are distilled for
(SD-Turbo's `EulerAncestralDiscreteScheduler` with "trailing" timesteps; SDXS samples its one
step at t=999 the same way). Pure arithmetic, no model: tested on its own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Prediction = Literal["epsilon", "v_prediction"]
Array = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class NoiseSchedule:
    """The training noise schedule, as the model's `scheduler/scheduler_config.json` says."""

    train_steps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = "scaled_linear"
    prediction: Prediction = "epsilon"

    @classmethod
    def read(cls, path: Path) -> NoiseSchedule:
        """From a diffusers scheduler config; the defaults (Stable Diffusion's) when absent."""
        if not path.is_file():
            return cls()
        raw = json.loads(path.read_text())
        prediction = raw.get("prediction_type", "epsilon")
        if prediction not in ("epsilon", "v_prediction"):
            raise ValueError(f"prediction type '{prediction}' is not supported")
        schedule = raw.get("beta_schedule", "scaled_linear")
        if schedule not in ("scaled_linear", "linear"):
            raise ValueError(f"beta schedule '{schedule}' is not supported")
        return cls(
            int(raw.get("num_train_timesteps", 1000)),
            float(raw.get("beta_start", 0.00085)),
            float(raw.get("beta_end", 0.012)),
            schedule,
            prediction,
        )

    def alphas_cumprod(self) -> NDArray[np.float64]:
        if self.beta_schedule == "scaled_linear":
            betas = np.linspace(self.beta_start**0.5, self.beta_end**0.5, self.train_steps) ** 2
        else:
            betas = np.linspace(self.beta_start, self.beta_end, self.train_steps)
        return np.cumprod(1.0 - betas).astype(np.float64)


class EulerAncestral:
    """`steps` steps from pure noise to a clean latent."""

    def __init__(self, schedule: NoiseSchedule, steps: int) -> None:
        if not 1 <= steps <= schedule.train_steps:
            raise ValueError(f"steps must be between 1 and {schedule.train_steps}")
        self.schedule = schedule
        total = schedule.train_steps
        # "trailing": the last training timestep first, evenly spaced down from it
        self.timesteps = (np.round(np.arange(total, 0, -total / steps)).astype(np.int64) - 1)[
            :steps
        ]
        ac = schedule.alphas_cumprod()
        sigmas = np.sqrt((1 - ac) / ac)[self.timesteps]
        self.sigmas = np.append(sigmas, 0.0)
        self.init_sigma = float(self.sigmas[0])  # trailing spacing: the noise is sigma_max

    def __len__(self) -> int:
        return len(self.timesteps)

    def scale(self, latents: Array, i: int) -> Array:
        """The model's input at step `i` (the latent brought back to unit variance)."""
        sigma = float(self.sigmas[i])
        scaled: Array = (latents / np.sqrt(sigma**2 + 1)).astype(np.float32)
        return scaled

    def denoised(self, output: Array, i: int, latents: Array) -> Array:
        """The clean latent the model's output points to at step `i`."""
        sigma = float(self.sigmas[i])
        if self.schedule.prediction == "epsilon":
            clean: Array = (latents - sigma * output).astype(np.float32)
        else:
            c_out = -sigma / np.sqrt(sigma**2 + 1)
            clean = (output * c_out + latents / (sigma**2 + 1)).astype(np.float32)
        return clean

    def step(self, output: Array, i: int, latents: Array, noise: Array) -> tuple[Array, Array]:
        """The latent after step `i`, and the clean latent predicted at it (a preview's)."""
        x0 = self.denoised(output, i, latents)
        sigma_from, sigma_to = self.sigmas[i], self.sigmas[i + 1]
        sigma_up = np.sqrt(sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2)
        sigma_down = np.sqrt(sigma_to**2 - sigma_up**2)
        derivative = (latents - x0) / sigma_from
        moved = latents + derivative * (sigma_down - sigma_from)
        return (moved + noise * sigma_up).astype(np.float32), x0
