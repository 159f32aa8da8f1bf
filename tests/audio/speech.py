"""Real speech for the tests, spoken by eSpeak NG and re-encoded with PyAV."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import pytest

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (scripts/)"
)

# container, codec, sample rate for each format the API promises
FORMATS = {
    "mp3": ("mp3", "libmp3lame", 22050),
    "ogg": ("ogg", "libopus", 48000),
    "webm": ("webm", "libopus", 48000),
    "m4a": ("mp4", "aac", 22050),
    "flac": ("flac", "flac", 22050),
}


def speak(text: str, out: Path, voice: str = "en-us") -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), text], check=True)
    return out


def convert(wav: Path, fmt: str) -> Path:
    container, codec, rate = FORMATS[fmt]
    out = wav.with_suffix(f".{fmt}")
    with av.open(str(wav)) as src, av.open(str(out), "w", format=container) as dst:
        stream = dst.add_stream(codec, rate=rate)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        for frame in src.decode(audio=0):
            for piece in resampler.resample(frame):
                for packet in stream.encode(piece):
                    dst.mux(packet)
        for piece in resampler.resample(None):
            for packet in stream.encode(piece):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    return out
