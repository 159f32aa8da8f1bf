"""A tiny text-to-image pipeline made offline with random weights, in the real export's layout
and with its input and output names, types and shapes (engines/images/folder.py): what the tests
and bench/images.py draw with, since no real model can be downloaded here.

The text encoder is an embedding table, the UNet a few convolutions that read the latent, the
text and the timestep, the VAE decoder a 1x1 convolution scaled up 8x; CLIP's tokenizer is a
byte-level vocabulary of a few hundred tokens with two merges. `hidden` channels and `layers`
in the UNet make a step as slow as a test needs (to cancel or kill one mid-drawing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
WIDTH = 16  # the text encoder's hidden size
TOKENS = 77


def byte_chars() -> list[str]:
    """GPT-2's (and CLIP's) printable stand-ins for the 256 bytes."""
    ours = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    ours += range(ord("®"), ord("ÿ") + 1)
    chars = list(ours)
    extra = 0
    for b in range(256):
        if b not in ours:
            ours.append(b)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def _tokenizer(folder: Path) -> int:
    chars = byte_chars()
    merges = [("t", "h"), ("th", "e</w>")]
    tokens = chars + [c + "</w>" for c in chars] + ["th", "the</w>"]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    (folder / "special_tokens_map.json").write_text(json.dumps({"pad_token": "<|endoftext|>"}))
    return len(tokens)


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def _weights(
    rng: np.random.Generator, name: str, shape: tuple[int, ...], scale: float
) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def _text_encoder(path: Path, vocab: int, rng: np.random.Generator) -> None:
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "ids64"], ["last_hidden_state"], axis=0),
            helper.make_node("Cast", ["input_ids"], ["ids64"], to=TensorProto.INT64),
        ],
        "text_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", TOKENS])],
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", TOKENS, WIDTH]
            )
        ],
        [_weights(rng, "table", (vocab, WIDTH), 1.0)],
    )
    graph.node.sort(key=lambda n: n.op_type != "Cast")  # topological order
    _save(graph, path)


def _unet(path: Path, rng: np.random.Generator, hidden: int, layers: int) -> None:
    nodes = [
        helper.make_node("ReduceMean", ["encoder_hidden_states"], ["text_mean"], axes=[1, 2]),
        helper.make_node("Reshape", ["text_mean", "column"], ["text_term"]),
        helper.make_node("Cast", ["timestep"], ["t_float"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["t_float", "column"], ["t_column"]),
        helper.make_node("Mul", ["t_column", "t_scale"], ["t_term"]),
    ]
    inits = [
        numpy_helper.from_array(np.asarray([-1, 1, 1, 1], dtype=np.int64), "column"),
        numpy_helper.from_array(np.asarray(0.0001, dtype=np.float32), "t_scale"),
    ]
    last, channels = "sample", 4
    for i in range(layers):
        inits.append(_weights(rng, f"w{i}", (hidden, channels, 3, 3), 0.1))
        nodes.append(helper.make_node("Conv", [last, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        last, channels = f"r{i}", hidden
    inits.append(_weights(rng, "w_out", (4, channels, 3, 3), 0.1))
    nodes += [
        helper.make_node("Conv", [last, "w_out"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["conv", "text_term"], ["with_text"]),
        helper.make_node("Add", ["with_text", "t_term"], ["out_sample"]),
    ]
    latent = ["batch", 4, "height", "width"]
    graph = helper.make_graph(
        nodes,
        "unet",
        [
            helper.make_tensor_value_info("sample", TensorProto.FLOAT, latent),
            helper.make_tensor_value_info("timestep", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info(
                "encoder_hidden_states", TensorProto.FLOAT, ["batch", TOKENS, WIDTH]
            ),
        ],
        [helper.make_tensor_value_info("out_sample", TensorProto.FLOAT, latent)],
        inits,
    )
    _save(graph, path)


def _decoder(path: Path, rng: np.random.Generator) -> None:
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["latent_sample", "to_rgb"], ["rgb"]),
            helper.make_node("Resize", ["rgb", "", "scales"], ["big"], mode="nearest"),
            helper.make_node("Tanh", ["big"], ["sample"]),
        ],
        "vae_decoder",
        [helper.make_tensor_value_info("latent_sample", TensorProto.FLOAT, ["batch", 4, "h", "w"])],
        [helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["batch", 3, "H", "W"])],
        [
            _weights(rng, "to_rgb", (3, 4, 1, 1), 0.3),
            numpy_helper.from_array(np.asarray([1, 1, 8, 8], dtype=np.float32), "scales"),
        ],
    )
    _save(graph, path)


def make_tiny_pipeline(folder: Path, *, hidden: int = 8, layers: int = 1, seed: int = 0) -> Path:
    """The pipeline's folder, written now (a few hundred kilobytes)."""
    rng = np.random.default_rng(seed)
    vocab = _tokenizer(folder / "tokenizer")
    _text_encoder(folder / "text_encoder" / "model.onnx", vocab, rng)
    _unet(folder / "unet" / "model.onnx", rng, hidden, layers)
    _decoder(folder / "vae_decoder" / "model.onnx", rng)
    (folder / "model_index.json").write_text(
        json.dumps({"_class_name": "OnnxStableDiffusionPipeline", "_diffusers_version": "0.30"})
    )
    schedule = folder / "scheduler" / "scheduler_config.json"
    schedule.parent.mkdir()
    schedule.write_text(
        json.dumps(
            {
                "_class_name": "EulerAncestralDiscreteScheduler",
                "beta_schedule": "scaled_linear",
                "beta_start": 0.00085,
                "beta_end": 0.012,
                "num_train_timesteps": 1000,
                "prediction_type": "epsilon",
                "timestep_spacing": "trailing",
            }
        )
    )
    (folder / "vae_encoder").mkdir()
    (folder / "vae_encoder" / "model.onnx").write_bytes(b"not needed to draw")  # left out
    return folder
