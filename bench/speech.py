"""Speech on this machine: real-time factors of transcription and synthesis, peak memory.

    .venv/bin/python bench/speech.py [--json]

A benchmark, not a test: it prints its figures and exits 0 whatever they are. It calls the same
code the server runs (`iaforall.engines.whisper`, `iaforall.engines.tts`), in this process,
without HTTP. Speech comes from our own voices (piper for English, eSpeak NG for French), about
30 s of it, so the benchmark needs nothing else.

- Transcription real-time factor (RTF) = seconds spent / seconds of audio, warm model
  (targets: tiny.en <= 0.08, base <= 0.15), and the English word error rate against the text.
- Synthesis RTF (target <= 0.1) for each engine; piper's includes its process start, as served.
- Time to first audio byte of `/v1/audio/speech` is the whole synthesis (no streaming yet).
- Peak resident memory of this process (the models loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from iaforall.engines import tts, whisper

EN = (
    "The library opens at nine in the morning and closes at six in the evening. "
    "Please return your books before the end of the month. "
    "Children can join the reading club every Saturday afternoon. "
    "If you need help finding something, ask the person at the front desk. "
    "We also lend music, films and board games to everyone with a card."
)
FR = (
    "La bibliothèque ouvre à neuf heures du matin et ferme à six heures du soir. "
    "Merci de rendre vos livres avant la fin du mois. "
    "Les enfants peuvent venir au club de lecture chaque samedi après-midi."
)


def words(text: str) -> list[str]:
    return re.findall(r"[a-zà-ÿ']+", text.lower())


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / max(1, len(ref))


def speak(voice_id: str, text: str) -> tuple[np.ndarray, float, float]:
    voice = tts.resolve(voice_id)
    start = time.perf_counter()
    pcm, rate = tts.synthesize(voice, text)
    spent = time.perf_counter() - start
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
    seconds = samples.size / rate
    # whisper wants 16 kHz
    target = np.interp(np.arange(0, samples.size, rate / 16000), np.arange(samples.size), samples)
    return target.astype(np.float32), seconds, spent / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="iaforall-speech-bench-"))
    engine = whisper.Whisper(home, threads=os.cpu_count() or 2)
    results: dict[str, object] = {"cores": os.cpu_count()}
    english_voice = tts.voices()[0].id
    en_audio, en_seconds, en_tts_rtf = speak(english_voice, EN)
    fr_audio, fr_seconds, fr_tts_rtf = speak("espeak:fr", FR)
    results["synthesis_rtf"] = {
        english_voice: round(en_tts_rtf, 3),
        "espeak:fr": round(fr_tts_rtf, 3),
    }
    for name, audio, seconds, text, language in (
        ("whisper:tiny.en", en_audio, en_seconds, EN, "en"),
        ("whisper:base", en_audio, en_seconds, EN, "en"),
        ("whisper:base", fr_audio, fr_seconds, FR, "fr"),
    ):
        model = whisper.resolve(name)
        engine.transcribe(model, audio[: 16000 * 2], language=language)  # warm up: load
        start = time.perf_counter()
        out = engine.transcribe(model, audio, language=language)
        spent = time.perf_counter() - start
        results[f"{name} {language}"] = {
            "audio_s": round(seconds, 1),
            "rtf": round(spent / seconds, 3),
            "wer": round(wer(text, out.text), 3),
        }
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
