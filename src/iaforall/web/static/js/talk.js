// Talking instead of typing: the microphone button dictates into the message box, and the
// conversation mode listens, sends what was said, reads the answer aloud, and listens again,
// until it is turned off (its button, or Escape).

import { currentLanguage, t } from "./i18n.js";
import { openVoiceSession, Recorder, speechModel, transcribe } from "./voice.js";

const $ = (id) => document.getElementById(id);

// What the status line says in each phase (catalogue keys).
const SAY = {
  nothing: { key: "" },
  dictating: { key: "voice_listening_dictation" },
  listening: { key: "voice_listening" },
  transcribing: { key: "voice_transcribing" },
  answering: { key: "voice_answering" },
  speaking: { key: "voice_speaking" },
};

/**
 * host: { composer, send(text) -> Promise<final message|null>, speak(markdown) -> Promise,
 *         stopSpeaking(), models() -> [ids], streaming(), showError(err), announce(text) }
 */
export class Talk {
  constructor(host) {
    this.host = host;
    this.recorder = new Recorder();
    this.mode = "off"; // off | dictating | conversation
    this.phase = SAY.nothing; // what the status line says
    this.mic = $("mic-button");
    this.handsFree = $("handsfree-button");
    this.mic.addEventListener("click", () => this.toggleDictation());
    this.handsFree.addEventListener("click", () => this.toggleConversation());
  }

  /** Escape ends the conversation mode (true when it did). */
  escape() {
    if (this.mode !== "conversation") return false;
    this.endConversation();
    return true;
  }

  show(phase) {
    this.phase = phase;
    $("voice-status").textContent = phase.key ? t(phase.key) : "";
  }

  /** The status again, in a new language. */
  render() {
    this.show(this.phase);
  }

  model() {
    const model = speechModel(this.host.models(), currentLanguage());
    if (!model) throw Object.assign(new Error("no speech model"), { i18nKey: "error_no_speech_model", vars: {} });
    return model;
  }

  /** The words spoken: sent as they are recorded, so only the last piece is left at the end;
   * the whole recording once it ends when no voice session opens (or it fails). */
  async listen(options) {
    const asked = { model: this.model(), language: currentLanguage() };
    const session = await openVoiceSession(asked).catch(() => null);
    let audio;
    try {
      audio = await this.recorder.record({ ...options, onPcm: session && ((pcm) => session.append(pcm)) });
      if (!audio) return "";
      this.show(SAY.transcribing);
      if (session) {
        const text = await session.commit().catch(() => null);
        if (text !== null) return text;
      }
    } finally {
      session?.close();
    }
    return transcribe(audio, asked);
  }

  async toggleDictation() {
    if (this.mode === "dictating") {
      this.recorder.stop();
      return;
    }
    if (this.mode === "conversation") this.endConversation();
    this.mode = "dictating";
    this.mic.setAttribute("aria-pressed", "true");
    this.show(SAY.dictating);
    try {
      this.model(); // no Whisper installed: say so before asking for the microphone
      const text = await this.listen();
      if (text) {
        this.host.composer.insert(text);
        this.host.announce(t("announce_dictated", { text }));
      } else {
        this.host.announce(t("announce_nothing_heard"));
      }
    } catch (err) {
      this.host.showError(err);
    } finally {
      this.mode = "off";
      this.mic.setAttribute("aria-pressed", "false");
      this.show(SAY.nothing);
      this.host.composer.focus();
    }
  }

  async toggleConversation() {
    if (this.mode === "conversation") {
      this.endConversation();
      return;
    }
    if (this.mode === "dictating") this.recorder.cancel();
    this.mode = "conversation";
    this.handsFree.setAttribute("aria-pressed", "true");
    this.host.announce(t("announce_conversation_on"));
    const on = () => this.mode === "conversation";
    try {
      this.model();
      while (on()) {
        this.show(SAY.listening);
        const text = await this.listen({ waitMs: 30_000 });
        if (!on()) break;
        if (!text) continue; // silence or noise: keep listening
        this.show(SAY.answering);
        const answer = await this.host.send(text);
        if (!on()) break;
        if (!answer || answer.status !== "complete") break; // the error is shown; stop here
        this.show(SAY.speaking);
        await this.host.speak(answer.content);
      }
    } catch (err) {
      if (on()) this.host.showError(err);
    } finally {
      if (on()) this.endConversation();
    }
  }

  endConversation() {
    if (this.mode !== "conversation") return;
    this.mode = "off";
    this.recorder.cancel();
    this.host.stopSpeaking();
    this.handsFree.setAttribute("aria-pressed", "false");
    this.show(SAY.nothing);
    this.host.announce(t("announce_conversation_off"));
  }
}
