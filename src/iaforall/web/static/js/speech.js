// Read aloud: an answer spoken by the server's own voices (/v1/audio/speech: piper for
// English, eSpeak NG for French), played here. Nothing leaves the machine.

import { apiBlob } from "./api.js";
import { renderMarkdown } from "./markdown.js";
import { currentLanguage } from "./i18n.js";

const MAX_CHARS = 4000; // the server takes 4096

/** The words of a Markdown answer, without code blocks (unpleasant to hear), capped. */
export function spokenText(markdown) {
  const holder = document.createElement("div");
  holder.append(renderMarkdown(markdown));
  for (const block of holder.querySelectorAll(".code-block, pre")) block.remove();
  const text = holder.textContent.replace(/\s+/g, " ").trim();
  if (text.length <= MAX_CHARS) return text;
  const cut = text.slice(0, MAX_CHARS);
  const end = Math.max(cut.lastIndexOf(". "), cut.lastIndexOf("! "), cut.lastIndexOf("? "));
  return end > 0 ? cut.slice(0, end + 1) : cut;
}

export class ReadAloud {
  constructor({ onError, onChange }) {
    this.onError = onError;
    this.onChange = onChange; // (playing: boolean) -> void
    this.audio = null;
    this.url = null;
    this.finished = null; // resolves `speak` when the reading ends, however it ends
  }

  get playing() {
    return this.audio !== null;
  }

  stop() {
    if (this.audio) this.audio.pause();
    if (this.url) URL.revokeObjectURL(this.url);
    this.audio = null;
    this.url = null;
    this.finished?.();
    this.finished = null;
    this.onChange(false);
  }

  /** Read `markdown` aloud and resolve when it has been heard (or stopped). */
  async speak(markdown) {
    if (this.playing) this.stop();
    const ended = new Promise((resolve) => {
      this.finished = resolve;
    });
    await this.read(markdown);
    if (!this.playing) this.stop(); // nothing to say, or it failed: resolve now
    return ended;
  }

  async read(markdown) {
    if (this.playing) {
      this.stop();
      return;
    }
    const input = spokenText(markdown);
    if (!input) return;
    const voice = currentLanguage().startsWith("fr") ? "espeak:fr" : "alloy";
    try {
      const blob = await apiBlob("POST", "/v1/audio/speech", {
        model: "tts-1", voice, input, response_format: "mp3",
      });
      this.url = URL.createObjectURL(blob);
      this.audio = new Audio(this.url);
      this.audio.addEventListener("ended", () => this.stop());
      this.onChange(true);
      await this.audio.play();
    } catch (err) {
      this.stop();
      this.onError(err);
    }
  }
}
