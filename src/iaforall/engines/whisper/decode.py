"""Uploaded audio to 16 kHz mono samples, through PyAV (FFmpeg), with clear refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np

from iaforall.core.errors import InvalidRequest

SAMPLE_RATE = 16_000
# The containers and codecs we promise (others FFmpeg knows also pass).
FORMATS = "wav, mp3, ogg/opus, webm, m4a, flac"


def _bad(message: str, code: str) -> InvalidRequest:
    return InvalidRequest(message, param="file", code=code)


# Audio whose container does not say how long it is (a browser's MediaRecorder WebM) is
# estimated from its size at the bit rate of speech in Opus, 32 kbit/s.
UNDECLARED_BYTES_PER_SECOND = 4000


def _opened(path: Path) -> av.container.InputContainer:
    """The upload opened as audio (a context manager), or the refusal that says why not."""
    if path.stat().st_size == 0:
        raise _bad("The uploaded file is empty.", "empty_file")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, OSError):
        raise _bad(
            f"The uploaded file is not audio we can read (we accept {FORMATS}).",
            "unsupported_format",
        ) from None
    if not container.streams.audio:
        container.close()
        raise _bad(
            f"The uploaded file has no audio track (we accept {FORMATS}).", "unsupported_format"
        )
    return container


def probe(path: Path, max_seconds: float) -> float:
    """About how many seconds of audio the file holds, from its header (nothing decoded); the
    same refusals as `decode` for a file that is empty, not audio or declared too long."""
    with _opened(path) as container:
        declared = float(container.duration / av.time_base) if container.duration else 0.0
    if declared > max_seconds + 1:
        raise _too_long(max_seconds)
    if declared > 0:
        return declared
    return min(max_seconds, path.stat().st_size / UNDECLARED_BYTES_PER_SECOND)


def decode(path: Path, max_seconds: float) -> Any:
    """float32 samples at 16 kHz, mono; refused when empty, unreadable or longer than allowed."""
    with _opened(path) as container:
        stream = container.streams.audio[0]
        declared = float(container.duration / av.time_base) if container.duration else 0.0
        if declared > max_seconds + 1:
            raise _too_long(max_seconds)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        chunks: list[Any] = []
        total = 0
        limit = int(max_seconds * SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    total += samples.size
                    if total > limit:
                        raise _too_long(max_seconds)
                    chunks.append(samples)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except (av.error.FFmpegError, ValueError):
            raise _bad("The uploaded audio is corrupt or truncated.", "corrupt_audio") from None
    if not chunks or sum(c.size for c in chunks) == 0:
        raise _bad("The uploaded audio is corrupt, truncated or silent-empty.", "corrupt_audio")
    return np.concatenate(chunks).astype(np.float32) / 32768.0


def _too_long(max_seconds: float) -> InvalidRequest:
    return _bad(
        f"The audio is longer than the {max_seconds:g} seconds allowed "
        "(IAFORALL_MAX_AUDIO_SECONDS).",
        "audio_too_long",
    )
