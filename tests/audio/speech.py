"""Real speech for the tests, spoken by eSpeak NG and re-encoded with PyAV.

The test audio comes from the pip eSpeak NG (the `espeakng-loader` wheel, a dependency, run by
the server's own runner), whether or not the system has `espeak-ng`: the same audio on every
machine, and no system package needed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest

from iaforall.engines.tts.espeak import find

needs_espeak = pytest.mark.skipif(
    find("pip") is None, reason="espeakng-loader is not installed (pip install -e '.[dev]')"
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
    espeak = find("pip")
    assert espeak is not None, "espeakng-loader is not installed"
    done = subprocess.run(
        espeak.argv(voice, 150), input=text.encode(), capture_output=True, check=True, timeout=60
    )
    out.write_bytes(done.stdout)
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
