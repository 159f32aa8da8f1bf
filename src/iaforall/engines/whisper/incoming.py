"""Audio that arrives as it is spoken: its bytes turned into samples as they come (`PcmReader`),
and the pieces it can be transcribed in before it ends (`Listener`).

The Listener runs voice-activity detection (faster-whisper's Silero) on the audio not yet
transcribed; a stretch of speech followed by a pause is a closed piece, which can be decoded
while the person goes on speaking. When the audio ends, only the open tail is left to decode.
"""

from __future__ import annotations

import struct
from typing import Any

import av
import numpy as np

from iaforall.core.errors import InvalidRequest

SAMPLE_RATE = 16_000
# A pause at least this long after speech closes a piece: the one between two sentences (0.3 to
# 0.4 s in our own voices' speech, often more in people's). Shorter ones, between words, keep
# the words together: Whisper reads a phrase better whole.
PAUSE_SECONDS = 0.25
# How much new audio makes the detection look again (each look reads the open audio).
LOOK_EVERY_SECONDS = 0.3
# Speech without a pause this long is cut anyway (Whisper reads 30-second windows).
LONGEST_PIECE_SECONDS = 25.0
# A WAV header larger than this is refused (it is a few dozen bytes; metadata may add some).
MAX_HEADER_BYTES = 64 * 1024
RAW_TYPES = ("audio/pcm", "audio/l16", "audio/x-raw", "application/octet-stream")
WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
STREAM_TYPES = RAW_TYPES + WAV_TYPES


def _bad(message: str, code: str = "unsupported_format") -> InvalidRequest:
    return InvalidRequest(message, param="file", code=code)


class PcmReader:
    """A WAV file (16-bit PCM, any rate, mono or stereo) or raw PCM (16-bit little-endian,
    mono, at `rate`: 16 kHz unless said) read as its bytes arrive, as 16 kHz mono float32
    samples."""

    def __init__(self, content_type: str, rate: int = SAMPLE_RATE) -> None:
        media = content_type.split(";")[0].strip().lower()
        if media not in STREAM_TYPES:
            raise _bad(
                "Audio sent as it is spoken must be a WAV (16-bit PCM) or raw PCM "
                "(audio/pcm: 16-bit little-endian, 16 kHz, mono).",
            )
        self._wav = media in WAV_TYPES
        self._header = bytearray()
        self._left = b""  # the bytes of a frame cut between two chunks
        self._rate = rate
        self._channels = 1
        self._started = not self._wav
        self._resampler: Any = None
        self.seconds = 0.0  # of audio read so far

    def feed(self, data: bytes) -> np.ndarray:
        if not self._started:
            self._header += data
            if len(self._header) > MAX_HEADER_BYTES:
                raise _bad("The upload's WAV header is too large or broken.")
            found = self._parse_header()
            if found is None:
                return _empty()
            data = bytes(self._header[found:])
            self._header.clear()
            self._started = True
        data = self._left + data
        frame = 2 * self._channels
        usable = len(data) - len(data) % frame
        self._left = data[usable:]
        pcm = np.frombuffer(data[:usable], dtype="<i2")
        if pcm.size == 0:
            return _empty()
        self.seconds += pcm.size / self._channels / self._rate
        if self._rate == SAMPLE_RATE and self._channels == 1:
            return pcm.astype(np.float32) / 32768.0
        return self._resample(pcm)

    def end(self) -> np.ndarray:
        """What the resampler still holds once the upload has ended."""
        if not self._started:
            raise _bad("The upload ended before its WAV header did: it is not audio we can read.")
        if self._resampler is None:
            return _empty()
        return _samples(self._resampler.resample(None))

    def _resample(self, pcm: np.ndarray) -> np.ndarray:
        if self._resampler is None:  # FFmpeg's, as for an uploaded file (decode.py)
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        layout = "mono" if self._channels == 1 else "stereo"
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout=layout)
        frame.sample_rate = self._rate
        return _samples(self._resampler.resample(frame))

    def _parse_header(self) -> int | None:
        """The offset of the samples once the header is whole (None: not yet)."""
        head = bytes(self._header)
        if len(head) < 12:
            return None
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise _bad("The upload is not a WAV file (it should start with a RIFF/WAVE header).")
        at = 12
        formatted = False
        while len(head) >= at + 8:
            kind, size = head[at : at + 4], struct.unpack("<I", head[at + 4 : at + 8])[0]
            if kind == b"data":
                if not formatted:
                    raise _bad("The WAV file has no format chunk before its samples.")
                return at + 8
            if len(head) < at + 8 + size:
                return None
            if kind == b"fmt ":
                self._format(head[at + 8 : at + 8 + size])
                formatted = True
            at += 8 + size + size % 2
        return None

    def _format(self, chunk: bytes) -> None:
        if len(chunk) < 16:
            raise _bad("The WAV file's format chunk is broken.")
        code, channels, rate = struct.unpack("<HHI", chunk[:8])
        bits = struct.unpack("<H", chunk[14:16])[0]
        if code not in (1, 0xFFFE) or bits != 16 or channels not in (1, 2) or not rate:
            raise _bad(
                "A WAV sent as it is spoken must be 16-bit PCM, mono or stereo "
                f"(this one: format {code}, {bits} bits, {channels} channels)."
            )
        self._rate, self._channels = rate, channels


def _samples(frames: list[Any]) -> np.ndarray:
    if not frames:
        return _empty()
    pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    return pcm.astype(np.float32) / 32768.0


def _empty() -> np.ndarray:
    return np.zeros(0, dtype=np.float32)


class Listener:
    """The samples received so far, and where the part already handed out for decoding ends.
    `closed_piece` (blocking: a voice-activity pass) hands out the speech that a pause has
    closed; `tail` what is left once the audio has ended."""

    def __init__(self) -> None:
        self._buffer = np.zeros(SAMPLE_RATE * 8, dtype=np.float32)
        self.received = 0  # samples
        self.committed = 0  # samples handed out
        self._looked = 0

    def add(self, samples: np.ndarray) -> None:
        end = self.received + samples.size
        if end > self._buffer.size:
            grown = np.zeros(max(end, 2 * self._buffer.size), dtype=np.float32)
            grown[: self.received] = self._buffer[: self.received]
            self._buffer = grown
        self._buffer[self.received : end] = samples
        self.received = end

    def audio(self, start: int, end: int) -> np.ndarray:
        return self._buffer[start:end].copy()

    def due(self) -> bool:
        """Enough new audio since the last look to look again."""
        return self.received - self._looked >= LOOK_EVERY_SECONDS * SAMPLE_RATE

    def closed_piece(self) -> tuple[int, int] | None:
        """The next piece (start, end in samples) that a pause has closed, handed out; None
        while the speech goes on (or there is none yet)."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps  # type: ignore[import-untyped]

        self._looked = self.received
        start, end = self.committed, self.received
        pause = int(PAUSE_SECONDS * SAMPLE_RATE)
        if end - start < pause:
            return None
        options = VadOptions(min_silence_duration_ms=int(PAUSE_SECONDS * 1000), speech_pad_ms=0)
        found = get_speech_timestamps(self._buffer[start:end], options)
        closed = [i for i, s in enumerate(found) if s["end"] + pause <= end - start]
        if not closed:
            if not found:  # silence so far: nothing to decode in it, keep only a pause's worth
                self.committed = max(start, end - pause)
            elif end - start >= LONGEST_PIECE_SECONDS * SAMPLE_RATE:
                return self._hand_out(end)  # no pause at all: cut where it is
            return None
        last = closed[-1]
        after = found[last + 1]["start"] if last + 1 < len(found) else end - start
        return self._hand_out(start + (found[last]["end"] + after) // 2)

    def tail(self) -> tuple[int, int] | None:
        """What is left to decode once the audio has ended (None: nothing, or no speech in it:
        the pause after the last words costs a voice-activity pass, not a decoding)."""
        from faster_whisper.vad import get_speech_timestamps

        start, end = self.committed, self.received
        if end <= start or not get_speech_timestamps(self._buffer[start:end]):
            self.committed = end
            return None
        return self._hand_out(end)

    def _hand_out(self, end: int) -> tuple[int, int]:
        piece = (self.committed, end)
        self.committed = end
        return piece
