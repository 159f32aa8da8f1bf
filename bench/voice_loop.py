"""End of speech to the first audio byte of the spoken answer: the audio uploaded as it is
spoken (transcribed while it arrives) against the whole recording uploaded once it ends.

    .venv/bin/python bench/voice_loop.py [--runs 3] [--json]   (make bench-voice-loop)

A benchmark, not a test: it prints its figures and exits 0 whatever they are. Everything is
real: `iaforall serve` on a free loopback port (warm-up on: the chat model, Whisper and the
voices are ready before the first question), with a packaged chat model — `smollm2:135m` for
English, then the default `qwen2.5-coder:1.5b` for English and French. A question is what the
web app's conversation mode does:

1. the question, spoken beforehand by our own voices (piper in English, eSpeak NG in French) and
   resampled to 16 kHz WAV, is uploaded to `/v1/audio/transcriptions`
   - *arriving*: as a chunked body, 0.1 s of audio per chunk, paced at the audio's duration (a
     person speaking), so the server transcribes each sentence a pause closes while the next
     is spoken;
   - *whole*: as one file (a form) once the speech has ended: today's baseline;
2. the answer streamed (`/v1/chat/completions`, temperature 0) until its first sentence ends;
3. that sentence spoken (`/v1/audio/speech`), to its first audio byte.

The time is from the last byte of speech sent (the end of speech) to that first byte, with its
parts: the transcription's tail (last byte → transcript), the chat's first sentence, the speech's
first byte. The two ways alternate in one server, so their ratio is measured under the same load;
the share of the CPU other people's processes used during the run is printed (the machine is
shared), and the word error rate of each way's transcripts against what was said.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np

from first_question import first_sentence, model_ready, spoken, voice_warm, wait
from iaforall.models.store import ModelStore
from soak import CpuWatch, running_server, wait_quiet
from speech import wer

DEFAULT = "qwen2.5-coder:1.5b"
SMALL = "smollm2:135m"
# Two sentences, as people ask: the first is transcribed while the second is spoken.
QUESTIONS = {
    "en": (
        "I am planning a trip to Europe next month. What is the capital of France?",
        "whisper:tiny.en",
        "alloy",
    ),
    "fr": (
        "Je prépare un voyage en Europe le mois prochain. Quelle est la capitale de la France ?",
        "whisper:base",
        "espeak:fr",
    ),
}
TARGETS = {(SMALL, "en"): 0.8, (DEFAULT, "en"): 1.0, (DEFAULT, "fr"): 1.0}
CHUNK_SECONDS = 0.1


def at_16k(wav_bytes: bytes) -> bytes:
    """The WAV resampled to 16 kHz mono (as the web app sends it), by FFmpeg's resampler."""
    with wave.open(io.BytesIO(wav_bytes)) as w:
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
    frame = av.AudioFrame.from_ndarray(
        np.frombuffer(pcm, dtype="<i2").reshape(1, -1), format="s16", layout="mono"
    )
    frame.sample_rate = rate
    frames = [*resampler.resample(frame), *resampler.resample(None)]
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"".join(f.to_ndarray().tobytes() for f in frames))
    return out.getvalue()


def speak_answer(client: httpx.Client, model: str, voice: str, text: str) -> tuple[float, float]:
    """Seconds to the chat's first sentence, then to its first audio byte."""
    started = time.perf_counter()
    sentence = first_sentence(client, model, text)
    answered = time.perf_counter()
    body = {"model": "tts-1", "voice": voice, "input": sentence, "response_format": "wav"}
    with client.stream("POST", "/v1/audio/speech", json=body) as response:
        response.raise_for_status()
        next(response.iter_bytes())
    return answered - started, time.perf_counter() - answered


def hear_arriving(
    client: httpx.Client, audio: bytes, hearing: str, language: str
) -> tuple[str, float]:
    """The transcript of the audio sent as it is spoken; the end of speech (last byte sent)."""
    sent = [0.0]
    step = int(CHUNK_SECONDS * 16_000) * 2

    def body() -> Iterator[bytes]:
        header, pcm = audio[:44], audio[44:]
        started = time.perf_counter()
        yield header
        for i, at in enumerate(range(0, len(pcm), step), 1):
            yield pcm[at : at + step]
            # paced at the audio's duration: chunk i is sent once i chunks' time has passed
            time.sleep(max(0.0, started + i * CHUNK_SECONDS - time.perf_counter()))
        sent[0] = time.perf_counter()

    r = client.post(
        "/v1/audio/transcriptions",
        params={"model": hearing, "language": language},
        content=body(),
        headers={"content-type": "audio/wav"},
    )
    r.raise_for_status()
    return r.json()["text"], sent[0]


def hear_whole(
    client: httpx.Client, audio: bytes, hearing: str, language: str
) -> tuple[str, float]:
    """The transcript of the whole recording, uploaded once the speech has ended (now)."""
    ended = time.perf_counter()
    r = client.post(
        "/v1/audio/transcriptions",
        files={"file": ("question.wav", audio, "audio/wav")},
        data={"model": hearing, "language": language},
    )
    r.raise_for_status()
    return r.json()["text"], ended


def once(client: httpx.Client, model: str, language: str, audio: bytes, way: str) -> dict[str, Any]:
    said, hearing, voice = QUESTIONS[language]
    hear = hear_arriving if way == "arriving" else hear_whole
    text, ended = hear(client, audio, hearing, language)
    heard = time.perf_counter() - ended
    chat, speech = speak_answer(client, model, voice, text)
    return {
        "total_s": heard + chat + speech,
        "tail_s": heard,
        "chat_s": chat,
        "speech_s": speech,
        "wer": wer(said, text),
        "text": text,
    }


def medians(times: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("total_s", "tail_s", "chat_s", "speech_s", "wer")
    found: dict[str, Any] = {k: round(statistics.median(t[k] for t in times), 3) for k in keys}
    found["texts"] = sorted({t["text"] for t in times})
    return found


def measure(
    home: Path,
    model: str,
    languages: list[str],
    runs: int,
    audio: dict[str, bytes],
    quiet_output: bool,
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    # Our work gets both cores whatever others do (the CPU budget would otherwise shrink to what
    # the shared machine leaves, and measure the budget's policy rather than the voice loop).
    with running_server(home, model, IAFORALL_CPU_CORES="2") as server:
        wait(server, model_ready(model), model)
        wait(server, voice_warm, "the voice")
        cpu = CpuWatch(home)
        quiet = asyncio.run(wait_quiet(cpu, patience=30))
        with httpx.Client(base_url=server.url, timeout=300) as client:
            for language in languages:
                once(client, model, language, audio[language], "whole")  # the first of each kind
                once(client, model, language, audio[language], "arriving")
                before = cpu.sample()
                times: dict[str, list[dict[str, Any]]] = {"arriving": [], "whole": []}
                for _ in range(runs):
                    for way in ("arriving", "whole"):
                        times[way].append(once(client, model, language, audio[language], way))
                others = CpuWatch.others(before, cpu.sample())
                arriving, whole = medians(times["arriving"]), medians(times["whole"])
                found[language] = {
                    "arriving": arriving,
                    "whole": whole,
                    "ratio": round(arriving["total_s"] / whole["total_s"], 2),
                    "target_s": TARGETS[(model, language)],
                    "others_cpu_before": quiet,
                    "others_cpu": others,
                }
                if not quiet_output:
                    show(model, language, found[language])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="questions of each way per language")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    audio = {lang: at_16k(spoken(text, voice)) for lang, (text, _, voice) in QUESTIONS.items()}
    results: dict[str, Any] = {}
    if not args.json:
        print("End of speech (last byte sent) -> first audio byte of the answer, medians (s)")
        print(
            f"{'model':20} {'lang':4} {'way':9} {'total':>6} {'tail':>6} {'chat':>6} "
            f"{'speech':>6} {'WER':>5}",
            flush=True,
        )
    with tempfile.TemporaryDirectory(prefix="iaforall-bench-") as tmp:
        home = Path(tmp)
        for model, languages in ((SMALL, ["en"]), (DEFAULT, ["en", "fr"])):
            ModelStore(home).pull_packaged(model)
            results[model] = measure(home, model, languages, args.runs, audio, args.json)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))


def show(model: str, language: str, r: dict[str, Any]) -> None:
    """One model and language's figures, printed as soon as they are measured."""
    for way in ("arriving", "whole"):
        m = r[way]
        mark = ""
        if way == "arriving":
            met = "met" if m["total_s"] <= r["target_s"] else "missed"
            mark = f"  target {r['target_s']:.1f} {met}; others' CPU {r['others_cpu']}"
        print(
            f"{model:20} {language:4} {way:9} {m['total_s']:6.2f} {m['tail_s']:6.2f} "
            f"{m['chat_s']:6.2f} {m['speech_s']:6.2f} {m['wer']:5.2f}{mark}",
            flush=True,
        )
    print(f"{'':20} {language:4} arriving/whole {r['ratio']:.2f}", flush=True)
    for way in ("arriving", "whole"):
        print(f"{'':20} {language:4} {way:9} heard: {' | '.join(r[way]['texts'])}", flush=True)


if __name__ == "__main__":
    main()
