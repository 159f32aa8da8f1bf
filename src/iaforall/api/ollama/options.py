"""Ollama's `options`, checked, in our terms (its `keep_alive` is the answer pipeline's).

Sampling options we honour go to the engine; options that only tune how Ollama loads a model
(`num_ctx`, `num_thread`, `num_gpu`...) are server settings here and are ignored, named in the
`X-IAForAll-Ignored-Options` header, as are names we do not know (Ollama ignores them too);
sampling options we cannot honour are refused.
"""

from __future__ import annotations

import re
from typing import Any

from iaforall.core.errors import InvalidRequest
from iaforall.core.types import Sampling

# Set by the server's operator (IAFORALL_CONTEXT_LENGTH, IAFORALL_THREADS...), not per request;
# still checked for the type Ollama gives them (Ollama, too, refuses `"num_ctx": "big"`).
IGNORED_OPTIONS: dict[str, type] = {
    **dict.fromkeys(
        ("num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread", "num_keep", "repeat_last_n"),
        int,
    ),
    **dict.fromkeys(
        ("low_vram", "f16_kv", "logits_all", "vocab_only", "use_mmap", "use_mlock", "numa"),
        bool,
    ),
    "embedding_only": bool,
}
# What each option becomes in our sampling settings.
SAMPLING_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "seed": "seed",
    "num_predict": "max_tokens",
    "stop": "stop",
    "repeat_penalty": "repeat_penalty",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
# Refused unless left at the value that means "off".
_OFF = {"mirostat": 0, "tfs_z": 1.0, "typical_p": 1.0, "penalize_newline": False}


def options_sampling(options: dict[str, Any]) -> tuple[Sampling, list[str]]:
    """The sampling settings of Ollama's `options`, and the options ignored."""
    values: dict[str, Any] = {}
    ignored = []
    for name, value in options.items():
        if value is None:
            continue
        if name in IGNORED_OPTIONS and not _of_type(value, IGNORED_OPTIONS[name]):
            kind = "an integer" if IGNORED_OPTIONS[name] is int else "true or false"
            raise InvalidRequest(
                f"Invalid value for option '{name}': {value!r} (it must be {kind}).",
                param=f"options.{name}",
            )
        if name in IGNORED_OPTIONS or name not in SAMPLING_OPTIONS.keys() | _OFF.keys():
            # Ollama, too, ignores the names it does not know (older clients send some).
            ignored.append(re.sub(r"[^A-Za-z0-9_.-]", "?", name[:64]))  # safe in a header
        elif name in _OFF:
            if value != _OFF[name]:
                raise InvalidRequest(
                    f"The option '{name}' is not supported here; leave it out.",
                    param=f"options.{name}",
                    code="unsupported_parameter",
                )
        else:
            values[SAMPLING_OPTIONS[name]] = _checked(name, value)
    return Sampling(**values), ignored


def _of_type(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _checked(name: str, value: Any) -> Any:
    wrong = InvalidRequest(
        f"Invalid value for option '{name}': {value!r}.", param=f"options.{name}"
    )
    if name == "stop":
        stops = [value] if isinstance(value, str) else value
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise wrong
        return tuple(s for s in stops if s)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong
    if name in ("seed", "top_k", "num_predict"):
        if int(value) != value:
            raise wrong
        value = int(value)
    if name == "num_predict":
        if value in (-1, -2):  # Ollama: "until the model stops" / "fill the context"
            return None
        if value < 1:
            raise wrong
    if name == "top_k" and value <= 0:
        return None  # 0: Ollama's "no top-k"
    if name in ("temperature", "top_p", "min_p", "repeat_penalty") and value < 0:
        raise wrong
    return value
