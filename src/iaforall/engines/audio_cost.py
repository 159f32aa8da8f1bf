"""What audio jobs cost, in the tokens quotas and fair shares count.

One unit for every runtime, so a person's tokens per day cover chat and voice alike:
- a second of audio counts 10 tokens, heard (transcribed) or spoken (synthesized): about what
  a second of speech costs on 2 cores against a small chat model's tokens, and easy to explain;
- text counts as chat does: a transcript its Whisper tokens, text to speak 1 token per 4
  characters.
Transcriptions: prompt = the audio's seconds x 10, completion = the transcript's tokens.
Speech: prompt = characters / 4, completion = the audio's seconds x 10.
"""

from __future__ import annotations

import math

from iaforall.core.types import Usage
from iaforall.scheduling.policy import token_cost

AUDIO_TOKENS_PER_SECOND = 10
CHARS_PER_TOKEN = 4
SPOKEN_TOKENS_PER_SECOND = 3  # about 2.5 words a second: a transcript's tokens before it is read
SPOKEN_CHARS_PER_SECOND = 15  # about how fast our voices speak at speed 1


def heard(seconds: float, text_tokens: int) -> Usage:
    return Usage(math.ceil(seconds * AUDIO_TOKENS_PER_SECOND), text_tokens)


def spoken(characters: int, seconds: float) -> Usage:
    return Usage(math.ceil(characters / CHARS_PER_TOKEN), round(seconds * AUDIO_TOKENS_PER_SECOND))


def transcription_estimate(seconds: float) -> float:
    """The scheduler's estimate before the work (settled with the real usage after)."""
    return token_cost(*_counts(heard(seconds, math.ceil(seconds * SPOKEN_TOKENS_PER_SECOND))))


def speech_estimate(characters: int, speed: float = 1.0) -> float:
    seconds = characters / SPOKEN_CHARS_PER_SECOND / speed
    return token_cost(*_counts(spoken(characters, seconds)))


def _counts(usage: Usage) -> tuple[int, int]:
    return usage.prompt_tokens, usage.completion_tokens
