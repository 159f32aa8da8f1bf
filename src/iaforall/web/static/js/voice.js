// Speech in: the microphone recorded in the page, transcribed by the server's own Whisper
// (/v1/audio/transcriptions). Nothing leaves the machine. Recording ends when the user says
// so, or after a pause once something was said.

import { apiForm } from "./api.js";

const LEVEL = 0.015; // RMS above this is speech (below: room noise)
const TICK_MS = 100;

// Why the microphone cannot be used, by the browser's error name: catalogue keys.
const INSECURE = { key: "error_mic_insecure" };
const PROBLEMS = {
  NotAllowedError: { key: "error_mic_denied" },
  SecurityError: { key: "error_mic_denied" },
  NotFoundError: { key: "error_mic_missing" },
  OverconstrainedError: { key: "error_mic_missing" },
  NotReadableError: { key: "error_mic_busy" },
};

/** Shown as a plain-language error (main.js `showError` reads `i18nKey`). */
export class MicrophoneError extends Error {
  constructor({ key }) {
    super(key);
    this.i18nKey = key;
    this.vars = {};
  }
}

export class Recorder {
  constructor() {
    this.session = null; // { stream, recorder, chunks, context, timer, done }
  }

  get recording() {
    return this.session !== null;
  }

  /**
   * Record until `stop()`, or `pauseMs` of quiet after speech, or `maxMs`. Resolves with the
   * audio, or null when nothing was said within `waitMs` (or it was cancelled).
   */
  async record({ pauseMs = 2500, waitMs = 60_000, maxMs = 120_000 } = {}) {
    if (this.session) throw new Error("already recording");
    // No mediaDevices at all: the page is not a secure context (http on a LAN address).
    if (!navigator.mediaDevices?.getUserMedia) throw new MicrophoneError(INSECURE);
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      throw new MicrophoneError(PROBLEMS[err?.name] || PROBLEMS.NotFoundError);
    }
    const type = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm"].find(
      (t) => window.MediaRecorder?.isTypeSupported(t),
    );
    const recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
    const chunks = [];
    recorder.addEventListener("dataavailable", (event) => {
      if (event.data.size) chunks.push(event.data);
    });
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const session = { stream, recorder, context, heard: false, cancelled: false };
    this.session = session;
    const finished = new Promise((resolve) => {
      recorder.addEventListener("stop", () => {
        this.release(session);
        const heard = session.heard && !session.cancelled && chunks.length;
        resolve(heard ? new Blob(chunks, { type: recorder.mimeType || "audio/webm" }) : null);
      });
    });
    const started = performance.now();
    let lastSound = started;
    session.timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      const now = performance.now();
      if (Math.sqrt(sum / samples.length) > LEVEL) {
        session.heard = true;
        lastSound = now;
      }
      const paused = session.heard && now - lastSound > pauseMs;
      const waitedInVain = !session.heard && now - started > waitMs;
      if (paused || waitedInVain || now - started > maxMs) this.stop();
    }, TICK_MS);
    await context.resume().catch(() => {});
    recorder.start(250);
    return finished;
  }

  /** End the recording; what was said is kept. */
  stop() {
    const session = this.session;
    if (!session) return;
    clearInterval(session.timer);
    // A press before any sound was measured still keeps what was recorded.
    session.heard = true;
    if (session.recorder.state !== "inactive") session.recorder.stop();
  }

  /** End the recording and drop it. */
  cancel() {
    if (!this.session) return;
    this.session.cancelled = true;
    this.stop();
  }

  release(session) {
    clearInterval(session.timer);
    for (const track of session.stream.getTracks()) track.stop();
    session.context.close().catch(() => {});
    if (this.session === session) this.session = null;
  }
}

/** The best installed Whisper for a language: English's own small model, else multilingual. */
export function speechModel(models, language) {
  const english = language.startsWith("en");
  const names = models.filter((m) => m.startsWith("whisper:"));
  if (english && names.includes("whisper:tiny.en")) return "whisper:tiny.en";
  return names.find((m) => !m.endsWith(".en")) || names[0] || null;
}

/** The words in `audio`, by the server's Whisper, in `language` ("en", "fr", …). */
export async function transcribe(audio, { model, language }) {
  const form = new FormData();
  const extension = audio.type.includes("ogg") ? "ogg" : "webm";
  form.append("file", audio, `speech.${extension}`);
  form.append("model", model);
  form.append("language", language.split("-")[0]);
  form.append("response_format", "json");
  const result = await apiForm("/v1/audio/transcriptions", form);
  return (result.text || "").trim();
}
