"""16-bit mono PCM to the formats OpenAI's speech API returns, with PyAV (FFmpeg)."""

from __future__ import annotations

import io
import wave
from typing import cast

import av
import numpy as np
from av.audio.stream import AudioStream

FORMATS = {
    "mp3": ("mp3", "libmp3lame", None, "audio/mpeg"),
    "opus": ("ogg", "libopus", 48000, "audio/ogg"),
    "aac": ("adts", "aac", None, "audio/aac"),
    "flac": ("flac", "flac", None, "audio/flac"),
    "wav": ("", "", None, "audio/wav"),
    "pcm": ("", "", 24000, "audio/pcm"),
}


def media_type(fmt: str) -> str:
    return FORMATS[fmt][3]


def encode(pcm: bytes, rate: int, fmt: str) -> bytes:
    container, codec, out_rate, _ = FORMATS[fmt]
    if fmt == "wav":
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm)
        return out.getvalue()
    samples = np.frombuffer(pcm, dtype=np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = rate
    if fmt == "pcm":  # OpenAI's raw PCM: 24 kHz, 16-bit signed little-endian, mono
        resampler = av.AudioResampler(format="s16", layout="mono", rate=24000)
        pieces = [*resampler.resample(frame), *resampler.resample(None)]
        return b"".join(p.to_ndarray().astype("<i2").tobytes() for p in pieces)
    out = io.BytesIO()
    with av.open(out, "w", format=container) as dst:
        stream = cast(AudioStream, dst.add_stream(codec, rate=out_rate or rate))
        stream.layout = "mono"
        resampler = av.AudioResampler(
            format=stream.format.name, layout="mono", rate=out_rate or rate
        )
        for piece in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(piece):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    return out.getvalue()
