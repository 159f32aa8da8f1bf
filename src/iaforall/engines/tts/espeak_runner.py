"""Speaks text with a libespeak-ng file (the `espeakng-loader` wheel's), in a process of its own.

libespeak-ng is GPL-3.0: the server never loads it; it runs this file as a separate program
(`python -I -S espeak_runner.py --lib L --data D -v fr -s 175 --stdout`, text on stdin), which
answers like the `espeak-ng --stdout` command: a WAV file (16-bit mono PCM) on stdout; on a
failure one line on stderr and exit status 1. Only the standard library: it runs without site
packages, so it starts in milliseconds.
"""

from __future__ import annotations

import ctypes
import struct
import sys

# espeak_ng_OUTPUT_MODE, espeak_PARAMETER and espeak_Synth's flags (speak_lib.h, espeak_ng.h)
SYNCHRONOUS = 0x0001
RATE = 1
CHARS_UTF8 = 1
END_PAUSE = 0x1000  # a pause at the end, as the command line adds
POS_CHARACTER = 1
OK = 0
CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class Failed(Exception):
    """Said on stderr, in one line."""


def wav(pcm: bytes, rate: int) -> bytes:
    """A 16-bit mono WAV file: the 44-byte header `espeak-ng --stdout` writes, then the PCM."""
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        *(b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16),
        *(b"data", len(pcm)),
    )
    return header + pcm


def speak(lib_path: str, data_path: str, voice: str, rate: int, text: str) -> bytes:
    try:
        lib = ctypes.CDLL(lib_path)
    except OSError as exc:
        raise Failed(f"cannot load {lib_path}: {exc}") from None

    def check(status: int, doing: str) -> None:
        if status != OK:
            message = ctypes.create_string_buffer(512)
            lib.espeak_ng_GetStatusCodeMessage(status, message, len(message))
            raise Failed(f"{doing}: {message.value.decode(errors='replace')}")

    lib.espeak_ng_InitializePath(data_path.encode())
    check(lib.espeak_ng_Initialize(None), f"cannot read the voice data in {data_path}")
    check(lib.espeak_ng_InitializeOutput(SYNCHRONOUS, 0, None), "cannot start synthesis")
    sample_rate = int(lib.espeak_ng_GetSampleRate())
    chunks: list[bytes] = []

    def collect(samples: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        if samples and count > 0:
            chunks.append(ctypes.string_at(samples, count * 2))
        return 0  # go on

    callback = CALLBACK(collect)  # kept alive until the end of this function
    lib.espeak_SetSynthCallback(callback)
    check(lib.espeak_ng_SetVoiceByName(voice.encode()), f"no voice '{voice}'")
    check(lib.espeak_ng_SetParameter(RATE, rate, 0), "cannot set the rate")
    encoded = text.encode() + b"\0"
    check(
        lib.espeak_ng_Synthesize(
            encoded, len(encoded), 0, POS_CHARACTER, 0, CHARS_UTF8 | END_PAUSE, None, None
        ),
        "synthesis failed",
    )
    check(lib.espeak_ng_Synchronize(), "synthesis failed")
    lib.espeak_ng_Terminate()
    return wav(b"".join(chunks), sample_rate)


USAGE = "usage: espeak_runner.py --lib LIB --data DATA [-v VOICE] [-s RATE] [--stdout] < text"


def options(argv: list[str]) -> dict[str, str]:
    """`--lib L --data D -v fr -s 175 --stdout`, as `espeak.Espeak.argv` writes them (no
    argparse: its imports would double the time this program takes to start)."""
    found = {"-v": "en", "-s": "175"}
    args = iter(argv)
    for flag in args:
        if flag == "--stdout":  # the WAV always goes to stdout
            continue
        value = next(args, None)
        if flag not in ("--lib", "--data", "-v", "-s") or value is None:
            raise Failed(USAGE)
        found[flag] = value
    if "--lib" not in found or "--data" not in found or not found["-s"].isdigit():
        raise Failed(USAGE)
    return found


def main(argv: list[str]) -> int:
    try:
        found = options(argv)
        text = sys.stdin.buffer.read().decode(errors="replace")
        audio = speak(found["--lib"], found["--data"], found["-v"], int(found["-s"]), text)
    except Failed as exc:
        print(f"espeak-ng: {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(audio)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
