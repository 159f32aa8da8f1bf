"""Speech on this machine: real-time factors of transcription and synthesis, time to first audio
byte, peak memory.

    .venv/bin/python bench/speech.py [--json] [--runs N] [--beams 5,1]

A benchmark, not a test: it prints its figures and exits 0 whatever they are. It calls the same
code the server runs (`iaforall.engines.whisper`, `iaforall.engines.tts`), in this process,
without HTTP. Speech comes from our own voices (piper for English, eSpeak NG for French), so the
benchmark needs nothing else.

- Transcription real-time factor (RTF) = seconds spent / seconds of audio, warm model, on 17 s
  and 55 s of English and 9 s of French (Whisper encodes whole 30 s windows, so the short clip
  pays for 30 s: the longer one shows the sustained rate), the median
  of `--runs` runs and the best (targets: tiny.en <= 0.08, base <= 0.15), for each beam size
  asked, with the word error rate against the text. Other work only ever slows a run, so on a
  busy machine the best run is the figure to compare with an idle one; `cpu_s_per_s`, the CPU
  seconds spent per second of audio (all threads), compares settings whatever the load.
- Synthesis RTF (target <= 0.1): piper kept running (as served), piper started for the request
  (as before), eSpeak NG: the system's `espeak-ng` command (when installed) and the pip one
  (libespeak-ng from the `espeakng-loader` wheel, run by our runner), in the same run.
- Time to first audio byte of a long text (about 55 s of speech), WAV: the whole text at once
  from a piper started for it (as before) against the first sentence from the running piper
  (as served now, then the rest follows as it is spoken).
- Peak resident memory of this process (Whisper models loaded) and of the running piper.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from iaforall.engines import tts, whisper
from iaforall.engines.tts.encode import Streamer, encode
from iaforall.engines.tts.espeak import Choice, find

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
LONG = " ".join(  # about 55 s of speech, 1000 characters, no sentence twice
    [
        EN,
        "The town hall is next to the old market square, across the street from the bakery. "
        "On Tuesdays and Fridays, farmers sell fresh vegetables, cheese and honey there. "
        "Parking is free after seven in the evening and all day on Sunday.",
        "Our swimming pool will be closed for repairs from the first to the fifteenth of June. "
        "During that time, members may use the pool in the next village at no extra cost. "
        "We are sorry for the trouble and thank you for your patience.",
        "To register for the autumn courses, fill in the form at the reception desk or on our "
        "website, and bring a recent photograph. Classes in painting, cooking and languages "
        "start in the second week of September.",
    ]
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


def timed(work: Callable[[], Any], runs: int) -> tuple[Any, list[float], float]:
    """The last result, the wall seconds of each of `runs` runs, the median CPU seconds."""
    walls, cpus = [], []
    result = None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return result, walls, statistics.median(cpus)


def rtf(walls: list[float], seconds: float) -> dict[str, float]:
    """The median and the best real-time factor: other work on the machine only ever slows a
    run, so the best is an upper bound of what an idle machine does."""
    return {
        "rtf": round(statistics.median(walls) / seconds, 3),
        "best": round(min(walls) / seconds, 3),
    }


def to_16k(pcm: bytes, rate: int) -> tuple[np.ndarray, float]:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
    target = np.interp(np.arange(0, samples.size, rate / 16000), np.arange(samples.size), samples)
    return target.astype(np.float32), samples.size / rate


def synthesis(speaker: tts.Speaker, voice_id: str, text: str, runs: int) -> dict[str, Any]:
    voice = tts.resolve(voice_id, speaker.espeak)
    speaker.synthesize(voice, "Hello.")  # warm: piper's process is running
    (pcm, rate), walls, _ = timed(lambda: speaker.synthesize(voice, text), runs)
    seconds = len(pcm) / 2 / rate
    return {"audio_s": round(seconds, 1), **rtf(walls, seconds)}


def first_byte(speaker: tts.Speaker, voice: tts.Voice, text: str) -> tuple[float, float]:
    """Seconds to the first WAV bytes and to the last, streamed as the server does."""
    start = time.perf_counter()
    first = 0.0
    streamer: Streamer | None = None
    for pcm, rate in speaker.stream(voice, tts.split(text)):
        streamer = streamer or Streamer("wav", rate)
        if streamer.add(pcm) and not first:
            first = time.perf_counter() - start
    assert streamer is not None
    streamer.close()
    return first, time.perf_counter() - start


def whole_first_byte(voice: tts.Voice, text: str) -> float:
    """Before: a piper started for the request speaks the whole text, then it is encoded."""
    start = time.perf_counter()
    once = tts.Speaker(keep_alive=0)
    pcm, rate = once.synthesize(voice, text)
    encode(pcm, rate, "wav")
    once.close()
    return time.perf_counter() - start


def _pair(values: list[float]) -> list[float]:
    return [round(statistics.median(values), 2), round(min(values), 2)]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--beams", default="5,1", help="beam sizes to measure, e.g. 5,1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="iaforall-speech-bench-") as home:
        measure(args, Path(home))


def measure(args: argparse.Namespace, home: Path) -> None:
    """Everything, with base's joined model under `home` (removed at the end)."""
    threads = min(os.cpu_count() or 2, 4)
    results: dict[str, Any] = {"cores": os.cpu_count(), "runs": args.runs}
    load = os.getloadavg()[0]
    speaker = tts.Speaker(keep_alive=600)
    english = tts.voices()[0]

    # Synthesis
    results["synthesis_rtf"] = {
        f"{english.id} (running)": synthesis(speaker, english.id, EN, args.runs),
    }
    kinds: tuple[Choice, ...] = ("system", "pip")
    for kind in kinds:
        if find(kind) is not None:
            espeak = tts.Speaker(keep_alive=0, espeak=kind)
            results["synthesis_rtf"][f"espeak:fr ({kind})"] = synthesis(espeak, "fr", FR, args.runs)
    (pcm, rate), walls, _ = timed(lambda: tts.Speaker(keep_alive=0).synthesize(english, EN), 2)
    seconds = len(pcm) / 2 / rate
    results["synthesis_rtf"][f"{english.id} (started per request)"] = {
        "audio_s": round(seconds, 1),
        **rtf(walls, seconds),
    }

    # Time to first audio byte of a long text
    before = [whole_first_byte(english, LONG) for _ in range(args.runs)]
    now = [first_byte(speaker, english, LONG) for _ in range(args.runs)]
    firsts, lasts = [f for f, _ in now], [t for _, t in now]
    results["first_audio_byte_s"] = {
        "text_chars": len(LONG),
        "before: whole text, piper started per request (median, best)": _pair(before),
        "now: first sentence, running piper (median, best)": _pair(firsts),
        "now: last byte (median, best)": _pair(lasts),
    }
    eng_pcm, eng_rate = speaker.synthesize(english, EN)
    en_audio, en_seconds = to_16k(eng_pcm, eng_rate)
    long_pcm, long_rate = speaker.synthesize(english, LONG)
    long_audio, long_seconds = to_16k(long_pcm, long_rate)
    fr_pcm, fr_rate = speaker.synthesize(tts.resolve("espeak:fr"), FR)
    fr_audio, fr_seconds = to_16k(fr_pcm, fr_rate)
    results["piper_peak_rss_mb"] = max(
        (peak_rss_mb(p.pid) for p in speaker.piper().processes()), default=0
    )
    speaker.close()

    # Transcription
    for beam in (int(b) for b in args.beams.split(",")):
        engine = whisper.Whisper(home, threads=threads, beam_size=beam)
        for name, audio, seconds, text, language in (
            ("whisper:tiny.en", en_audio, en_seconds, EN, "en"),
            ("whisper:tiny.en", long_audio, long_seconds, LONG, "en"),
            ("whisper:base", en_audio, en_seconds, EN, "en"),
            ("whisper:base", long_audio, long_seconds, LONG, "en"),
            ("whisper:base", fr_audio, fr_seconds, FR, "fr"),
        ):
            if name not in whisper.installed():
                continue
            model = whisper.resolve(name)
            engine.transcribe(model, audio[: 16000 * 2], language=language)  # warm up: load

            def run(
                engine: whisper.Whisper = engine,
                model: whisper.WhisperModel = model,
                audio: Any = audio,
                lang: str = language,
            ) -> whisper.Transcript:
                return engine.transcribe(model, audio, language=lang)

            out, walls, cpu = timed(run, args.runs)
            results[f"{name} {language} {round(seconds)} s beam {beam}"] = {
                "audio_s": round(seconds, 1),
                **rtf(walls, seconds),
                "cpu_s_per_s": round(cpu / seconds, 3),
                "wer": round(wer(text, out.text), 3),
            }
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    results["load_average"] = {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)}
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
