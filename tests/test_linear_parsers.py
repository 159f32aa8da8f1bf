"""Parsers of what people send run in linear time (api, vision, voice, models): a 1 MB
adversarial input costs about what a benign one of the same size does."""

from __future__ import annotations

import contextlib

from iaforall.core.errors import IAForAllError
from iaforall.engines.tts import split
from iaforall.models.pull import _hub_name
from iaforall.vision.decode import data_url_bytes
from tests.linear import assert_linear

MB = 1_000_000


def test_speech_is_split_in_linear_time() -> None:
    assert_linear(split, "Hello there. " * (MB // 13), "a" + " " * MB + "b")


def test_a_data_url_is_read_in_linear_time() -> None:
    def read(url: str) -> None:
        with contextlib.suppress(IAForAllError):
            data_url_bytes(url, max_bytes=2 * MB, param="url")

    assert_linear(
        read, "data:image/png" + ";x" * (MB // 2) + ",AAAA", "data:image/png;base64," + "A" * MB
    )


def test_a_file_name_is_read_in_linear_time() -> None:
    def name(file: str) -> None:
        _hub_name("owner/repo", None, file)

    assert_linear(name, "model-" * (MB // 6) + ".gguf", "q1" * (MB // 2) + "-.gguf")
