"""16-bit mono PCM to the formats OpenAI's speech API returns, with PyAV (FFmpeg)."""

from __future__ import annotations

import io
import struct
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


class _Sink:
    """Where PyAV writes a container it cannot seek back into: the bytes are sent as they come
    (the muxers then leave out what they would fill in at the end, such as mp3's Xing frame)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


class Streamer:
    """Encodes PCM pieces as they come, in one format, and gives the bytes ready to send."""

    def __init__(self, fmt: str, rate: int) -> None:
        self.fmt = fmt
        self.rate = rate
        container, codec, out_rate, _ = FORMATS[fmt]
        self._header = fmt == "wav"
        self._resampler: av.AudioResampler | None = None
        self._dst: av.container.OutputContainer | None = None
        self._sink = _Sink()
        if fmt == "pcm":
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=24000)
        elif fmt != "wav":
            self._dst = av.open(self._sink, "w", format=container)
            self._stream = cast(AudioStream, self._dst.add_stream(codec, rate=out_rate or rate))
            self._stream.layout = "mono"
            self._resampler = av.AudioResampler(
                format=self._stream.format.name, layout="mono", rate=out_rate or rate
            )

    def add(self, pcm: bytes) -> bytes:
        if self.fmt == "wav":
            head = _streamed_wav_header(self.rate) if self._header else b""
            self._header = False
            return head + pcm
        samples = np.frombuffer(pcm, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.rate
        return self._encode(frame)

    def close(self) -> bytes:
        if self.fmt == "wav":
            return _streamed_wav_header(self.rate) if self._header else b""
        tail = self._encode(None)
        if self._dst is not None:
            for packet in self._stream.encode(None):
                self._dst.mux(packet)
            self._dst.close()
            tail += self._sink.take()
        return tail

    def _encode(self, frame: av.AudioFrame | None) -> bytes:
        assert self._resampler is not None
        pieces = self._resampler.resample(frame)
        if self._dst is None:  # pcm
            return b"".join(p.to_ndarray().astype("<i2").tobytes() for p in pieces)
        for piece in pieces:
            for packet in self._stream.encode(piece):
                self._dst.mux(packet)
        return self._sink.take()


def _streamed_wav_header(rate: int) -> bytes:
    """A WAV header whose lengths say "unknown, read to the end" (0xFFFFFFFF), as streamed WAV
    is written; decoders (FFmpeg, browsers, Python's wave) read the samples up to the end."""
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", 0xFFFFFFFF)
    )
