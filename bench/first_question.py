"""The first spoken question after a start against the next ones, with and without the voice
warmed at start (IAFORALL_WARM_UP).

    .venv/bin/python bench/first_question.py [--model qwen2.5-coder:1.5b] [--runs 3] [--json]

A benchmark, not a test: it prints its figures and exits 0 whatever they are. Everything is
real: `iaforall serve` started twice on a free loopback port (warm-up off, then on) with the
packaged chat model, Whisper and the voices from their packages. A question is what the web
app's conversation mode does, one after the other, over HTTP:

1. the spoken question (made beforehand by our own voices, in this process: eSpeak NG for
   French, piper for English) transcribed (`/v1/audio/transcriptions`; whisper:base for French,
   whisper:tiny.en for English);
2. the answer streamed (`/v1/chat/completions`, temperature 0) until its first sentence ends;
3. that sentence spoken (`/v1/audio/speech`, French eSpeak NG or English piper), to its first
   audio byte.

The time is from the upload's start to that first byte. Each server is asked once the default
model is loaded (and, warm, once the voice is warm), so the chat model's own loading is not
counted; the first question pays whatever loads on first use. The figure to read is the ratio
of the first question to the median of the next ones, measured in the same server.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import httpx

from iaforall.engines import tts
from iaforall.models.store import ModelStore
from soak import Server, running_server

QUESTIONS = {
    "fr": ("Quelle est la capitale de la France ?", "whisper:base", "espeak:fr"),
    "en": ("What is the capital of France?", "whisper:tiny.en", "alloy"),
}


def spoken(text: str, voice: str) -> bytes:
    """The question as a WAV, spoken by our own voice in this process."""
    speaker = tts.Speaker(keep_alive=0)
    try:
        pcm, rate = speaker.synthesize(tts.resolve(voice), text)
    finally:
        speaker.close()
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()


def first_sentence(client: httpx.Client, model: str, question: str) -> str:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": question}],
        "stream": True,
        "temperature": 0,
        "max_tokens": 60,
    }
    text = ""
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            text += choices[0].get("delta", {}).get("content") or ""
            if any(mark in text for mark in ".!?\n"):
                break
    return text.strip() or "OK."


def ask(client: httpx.Client, model: str, language: str, audio: bytes) -> dict[str, float]:
    _, hearing, voice = QUESTIONS[language]
    started = time.perf_counter()
    heard = client.post(
        "/v1/audio/transcriptions",
        files={"file": ("question.wav", audio, "audio/wav")},
        data={"model": hearing, "language": language},
    )
    heard.raise_for_status()
    transcribed = time.perf_counter()
    sentence = first_sentence(client, model, heard.json()["text"])
    answered = time.perf_counter()
    body = {"model": "tts-1", "voice": voice, "input": sentence, "response_format": "wav"}
    with client.stream("POST", "/v1/audio/speech", json=body) as response:
        response.raise_for_status()
        next(response.iter_bytes())
    spoke = time.perf_counter()
    return {
        "total_s": spoke - started,
        "transcription_s": transcribed - started,
        "answer_s": answered - transcribed,
        "speech_s": spoke - answered,
    }


def health(server: Server) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{server.url}/health", timeout=5).json()
    return result


def wait(server: Server, ready: Any, what: str, patience: float = 300) -> None:
    deadline = time.monotonic() + patience
    while not ready(health(server)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready in {patience:.0f} s")
        time.sleep(0.2)


def model_ready(model: str) -> Any:
    return lambda h: any(m["name"] == model and m["state"] == "ready" for m in h["models"])


def voice_warm(h: dict[str, Any]) -> bool:
    runtimes = {r["name"]: r for r in h.get("runtimes", [])}
    heard = all(
        runtimes.get(n, {}).get("state") == "ready" for n in ("whisper:tiny.en", "whisper:base")
    )
    return heard and runtimes.get("tts-1", {}).get("piper_processes", 0) >= 1


def measure(
    home: Path, model: str, warm: bool, runs: int, audio: dict[str, bytes]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for language in QUESTIONS:
        # A new server per language: each language's first question is a first one.
        with running_server(home, model, IAFORALL_WARM_UP=str(warm).lower()) as server:
            wait(server, model_ready(model), model)
            if warm:
                wait(server, voice_warm, "the voice")
            with httpx.Client(base_url=server.url, timeout=300) as client:
                times = [ask(client, model, language, audio[language]) for _ in range(runs + 1)]
        first, rest = times[0], times[1:]
        next_total = statistics.median(t["total_s"] for t in rest)
        found[language] = {
            "first": {k: round(v, 2) for k, v in first.items()},
            "next_total_s": round(next_total, 2),
            "first_over_next": round(first["total_s"] / next_total, 2),
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder:1.5b")
    parser.add_argument("--runs", type=int, default=3, help="questions after the first one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    audio = {lang: spoken(text, voice) for lang, (text, _, voice) in QUESTIONS.items()}
    with tempfile.TemporaryDirectory(prefix="iaforall-bench-") as tmp:
        home = Path(tmp)
        ModelStore(home).pull_packaged(args.model)
        results = {
            "cold": measure(home, args.model, False, args.runs, audio),
            "warm": measure(home, args.model, True, args.runs, audio),
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"First spoken question after a start, {args.model} (seconds to the first audio byte)")
    header = f"{'start':6} {'lang':4} {'first':>6} {'next':>6} {'first/next':>10}"
    print(f"{header}  first: hear / answer / speak")
    for start, by_language in results.items():
        for language, r in by_language.items():
            f = r["first"]
            print(
                f"{start:6} {language:4} {f['total_s']:6.2f} {r['next_total_s']:6.2f} "
                f"{r['first_over_next']:10.2f}  "
                f"{f['transcription_s']:.2f} / {f['answer_s']:.2f} / {f['speech_s']:.2f}"
            )


if __name__ == "__main__":
    main()
