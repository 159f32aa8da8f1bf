"""The numpy scheduler and CLIP's tokenizer, on their own (no model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iaforall.engines.images.sampler import EulerAncestral, NoiseSchedule
from iaforall.engines.images.tokenizer import LENGTH, ClipTokenizer
from tests.images.tiny import make_tiny_pipeline


def test_trailing_timesteps_start_at_the_last_training_step() -> None:
    assert EulerAncestral(NoiseSchedule(), 1).timesteps.tolist() == [999]
    assert EulerAncestral(NoiseSchedule(), 4).timesteps.tolist() == [999, 749, 499, 249]


def test_sigmas_fall_to_zero_and_the_noise_starts_at_the_largest() -> None:
    sampler = EulerAncestral(NoiseSchedule(), 4)
    assert np.all(np.diff(sampler.sigmas) < 0)
    assert sampler.sigmas[-1] == 0
    assert sampler.init_sigma == pytest.approx(14.6, rel=0.01)  # SD's sigma at t=999


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_a_perfect_prediction_lands_on_the_clean_latent(prediction: str) -> None:
    """The last step has no noise left to add: it lands on the predicted clean latent."""
    schedule = NoiseSchedule(prediction=prediction)  # type: ignore[arg-type]
    sampler = EulerAncestral(schedule, 1)
    rng = np.random.default_rng(0)
    clean = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    noise = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    sigma = sampler.sigmas[0]
    noisy = clean + sigma * noise
    if prediction == "epsilon":
        output = noise
    else:  # v = alpha * noise - sigma_t * clean, in the scaled model input's terms
        alpha, sigma_t = 1 / np.sqrt(sigma**2 + 1), sigma / np.sqrt(sigma**2 + 1)
        output = alpha * noise - sigma_t * clean
    latents, x0 = sampler.step(output.astype(np.float32), 0, noisy, np.zeros_like(noisy))
    np.testing.assert_allclose(x0, clean, atol=1e-3)
    np.testing.assert_allclose(latents, clean, atol=1e-3)


def test_the_schedule_is_read_from_the_models_config(tmp_path: Path) -> None:
    config = tmp_path / "scheduler_config.json"
    config.write_text('{"prediction_type": "v_prediction", "num_train_timesteps": 500}')
    schedule = NoiseSchedule.read(config)
    assert (schedule.prediction, schedule.train_steps) == ("v_prediction", 500)
    assert NoiseSchedule.read(tmp_path / "absent.json") == NoiseSchedule()
    config.write_text('{"prediction_type": "sample"}')
    with pytest.raises(ValueError, match="not supported"):
        NoiseSchedule.read(config)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> ClipTokenizer:
    folder = make_tiny_pipeline(tmp_path_factory.mktemp("tok") / "tiny")
    return ClipTokenizer(folder / "tokenizer")


def test_the_tokenizer_splits_as_clip_does(tokenizer: ClipTokenizer) -> None:
    said = tokenizer.tokenizer.encode("The  CAT, the dog!").tokens
    assert said == [
        "<|startoftext|>",
        "the</w>",  # lower case, and the merges applied
        "c",
        "a",
        "t</w>",
        ",</w>",
        "the</w>",
        "d",
        "o",
        "g</w>",
        "!</w>",
        "<|endoftext|>",
    ]


def test_ids_are_77_long_padded_and_a_long_prompt_keeps_its_end(tokenizer: ClipTokenizer) -> None:
    short = tokenizer.ids("a cat")[0]
    assert short.shape == (LENGTH,) and short[-1] == tokenizer.pad
    long = tokenizer.ids("a " * 200)[0]
    assert long.shape == (LENGTH,) and long[-1] == tokenizer.end
