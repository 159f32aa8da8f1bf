// Speech in: the microphone recorded in the page, transcribed by the server's own Whisper.
// Nothing leaves the machine. Recording ends when the user says so, or after a pause once
// something was said. The samples go to the server as they are recorded (a voice session on
// /v1/realtime, a WebSocket: Chromium streams a fetch body only over HTTP/2, the server speaks
// HTTP/1.1), which transcribes each sentence while the next is spoken; if that cannot start,
// the recording is sent whole once it ends (/v1/audio/transcriptions).

import { ApiError, apiForm } from "./api.js";

const LEVEL = 0.015; // RMS above this is speech (below: room noise)
const TICK_MS = 100;
const RATE = 16_000; // what Whisper reads: the browser resamples the microphone to it

// Why the microphone cannot be used, by the browser's error name: catalogue keys.
const INSECURE = { key: "error_mic_insecure" };
const PROBLEMS = {
  NotAllowedError: { key: "error_mic_denied" },
  SecurityError: { key: "error_mic_denied" },
  NotFoundError: { key: "error_mic_missing" },
  OverconstrainedError: { key: "error_mic_missing" },
  NotReadableError: { key: "error_mic_busy" },
};

// A voice session's error event has OpenAI's error type, not an HTTP status.
const STATUS_OF_TYPE = { invalid_request_error: 400, rate_limit_error: 429, server_error: 503 };

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
  async record({ pauseMs = 2500, waitMs = 60_000, maxMs = 120_000, onPcm = null } = {}) {
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
    const context = onPcm ? new AudioContext({ sampleRate: RATE }) : new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    const source = context.createMediaStreamSource(stream);
    source.connect(analyser);
    if (onPcm) await capture(context, source, onPcm);
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

/** `onPcm` gets the samples as 16-bit PCM while they are recorded (when the worklet loads). */
async function capture(context, source, onPcm) {
  try {
    await context.audioWorklet.addModule(new URL("./pcm-capture.js", import.meta.url));
  } catch {
    return; // no worklet: the recording is sent whole at its end
  }
  const node = new AudioWorkletNode(context, "pcm-capture");
  node.port.onmessage = ({ data }) => {
    const pcm = new Int16Array(data.length);
    for (let i = 0; i < data.length; i++) pcm[i] = Math.max(-1, Math.min(1, data[i])) * 0x7fff;
    onPcm(pcm);
  };
  source.connect(node);
}

/**
 * A voice session with the server's Whisper (/v1/realtime, in OpenAI's Realtime habit): `append`
 * the samples as they are recorded, `commit` to get the words (only the last piece is left to
 * decode by then). Resolves once the session is open; rejects when it cannot be.
 */
export function openVoiceSession({ model, language }) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/v1/realtime?intent=transcription`);
  let done = null; // { resolve, reject } of the commit
  const session = {
    append(pcm) {
      if (socket.readyState === WebSocket.OPEN) socket.send(pcm.buffer);
    },
    commit() {
      return new Promise((resolve, reject) => {
        done = { resolve, reject };
        socket.send(JSON.stringify({ type: "input_audio_buffer.commit" }));
      });
    },
    close() {
      socket.close();
    },
  };
  return new Promise((resolve, reject) => {
    socket.addEventListener("open", () => {
      const heard = { model, language: language.split("-")[0] };
      const settings = { input_audio_format: "pcm16", input_audio_transcription: heard };
      settings.iaforall = { sample_rate: RATE };
      socket.send(JSON.stringify({ type: "transcription_session.update", session: settings }));
      resolve(session);
    });
    socket.addEventListener("error", () => {
      reject(new Error("voice session unavailable"));
      done?.reject(new Error("voice session lost"));
    });
    socket.addEventListener("close", () => done?.reject(new Error("voice session closed")));
    socket.addEventListener("message", ({ data }) => {
      const event = JSON.parse(data);
      if (event.type === "conversation.item.input_audio_transcription.completed") {
        done?.resolve((event.transcript || "").trim());
      } else if (event.type === "error" && done) {
        const { code, message, param, type } = event.error;
        const status = STATUS_OF_TYPE[type] || 500; // said from its code, as an HTTP error is
        done.reject(new ApiError("http", { status, code, message, param }));
      }
    });
  });
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
