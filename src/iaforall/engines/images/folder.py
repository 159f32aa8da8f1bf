"""What an image model's folder holds: the ONNX export of a Stable Diffusion pipeline, in the
layout `optimum-cli export onnx` and the ONNX Runtime team's repositories use.

    model_index.json                 (optional: says it is a diffusers pipeline)
    scheduler/scheduler_config.json  (optional: the noise schedule; SD's by default)
    text_encoder/model.onnx          input_ids [1, 77] -> last_hidden_state [1, 77, D]
    tokenizer/vocab.json + merges.txt, or tokenizer/tokenizer.json (+ special_tokens_map.json)
    unet/model.onnx                  sample [1, C, H/8, W/8], timestep, encoder_hidden_states
                                     -> out_sample (same shape as sample)
    vae_decoder/model.onnx           latent_sample [1, C, H/8, W/8] -> sample [1, 3, H, W]
    vae_decoder/config.json          (optional: its scaling_factor)

Large graphs keep their weights beside them (`model.onnx_data`, `weights.pb`): every file of
those folders is kept. The encoder (vae_encoder/), safety checker and feature extractor are not
used to draw and are left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from iaforall.core.errors import ModelStoreError

PARTS = ("text_encoder", "unet", "vae_decoder")
KEPT = ("scheduler", "tokenizer", *PARTS)  # the folders copied into the store
TOP = ("model_index.json", "LICENSE", "LICENSE.md", "LICENSE.txt", "LICENSE.TXT", "README.md")
LATENT_SCALE = 8  # the VAE's downsampling: an image is 8 pixels per latent cell each way


def looks_like_image_model(names: list[str]) -> bool:
    """Whether these paths (relative, with /) are an image model's, by its three graphs."""
    return all(f"{part}/model.onnx" in names for part in PARTS)


def wanted(names: list[str]) -> list[str]:
    """Of a model's files (relative paths, with /), the ones kept in the store."""
    return sorted(n for n in names if n in TOP or (n.split("/", 1)[0] in KEPT and "/" in n))


def files_of(folder: Path) -> list[str]:
    """Every file under `folder`, as relative paths with /."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def check(names: list[str], where: str) -> None:
    """A 400 unless these files make a model we can draw with."""
    missing = [f"{part}/model.onnx" for part in PARTS if f"{part}/model.onnx" not in names]
    has_tokenizer = "tokenizer/tokenizer.json" in names or (
        "tokenizer/vocab.json" in names and "tokenizer/merges.txt" in names
    )
    if not has_tokenizer:
        missing.append(
            "tokenizer/vocab.json and tokenizer/merges.txt (or tokenizer/tokenizer.json)"
        )
    if missing:
        raise ModelStoreError(
            f"{where} is not the ONNX export of a text-to-image pipeline: it lacks "
            f"{', '.join(missing)}. Export one with `optimum-cli export onnx --model "
            "stabilityai/sd-turbo sd-turbo-onnx/` (docs/images.md)."
        )


@dataclass(frozen=True, slots=True)
class VaeConfig:
    scaling_factor: float = 0.18215  # Stable Diffusion's latent scale

    @classmethod
    def read(cls, folder: Path) -> VaeConfig:
        path = folder / "vae_decoder" / "config.json"
        if not path.is_file():
            return cls()
        return cls(float(json.loads(path.read_text()).get("scaling_factor", 0.18215)))


def weights(folder: Path) -> Iterator[Path]:
    """The files the graphs are read from (what a loaded model costs in memory, roughly)."""
    for part in PARTS:
        yield from (p for p in (folder / part).iterdir() if p.is_file() and p.suffix != ".json")
