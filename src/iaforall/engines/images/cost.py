"""What an image costs, in the tokens quotas and fair shares count (engines/audio_cost.py's
units): the prompt as text (1 token per 4 characters), and each picture a declared number of
units for 512x512 (IAFORALL_DRAW_UNITS), larger or smaller ones in proportion to their pixels,
so a person's tokens per day cover chat, voice and pictures alike."""

from __future__ import annotations

import math

from iaforall.core.types import Usage
from iaforall.engines.audio_cost import CHARS_PER_TOKEN
from iaforall.scheduling.policy import token_cost

REFERENCE_PIXELS = 512 * 512


def picture_units(units: int, width: int, height: int) -> int:
    return max(1, math.ceil(units * width * height / REFERENCE_PIXELS))


def drawn(prompt_chars: int, pictures: int, per_picture: int) -> Usage:
    return Usage(math.ceil(prompt_chars / CHARS_PER_TOKEN), pictures * per_picture)


def drawing_estimate(prompt_chars: int, pictures: int, per_picture: int) -> float:
    """The scheduler's estimate before the work (settled with the real usage after)."""
    usage = drawn(prompt_chars, pictures, per_picture)
    return token_cost(usage.prompt_tokens, usage.completion_tokens)
