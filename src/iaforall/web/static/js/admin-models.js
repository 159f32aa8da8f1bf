// Admin: the models this server answers with, each with its kind, and pulling one more: a chat
// model (a packaged name, hf.co/…, an https URL) or a runtime's (whisper:tiny.en, whisper:base,
// voice:joe…), with its progress as /api/pull streams it. The server answers with it at once.

import { api, apiLines, describeError, explain } from "./api.js";
import { el, say } from "./dom.js";
import { formatNumber, t } from "./i18n.js";

// Offered in the name field (any other name is accepted).
const SUGGESTED = [
  "qwen2.5-coder:1.5b", "qwen2.5-coder:0.5b", "smollm2:135m",
  "whisper:tiny.en", "whisper:base", "voice:joe", "voice:espeak",
];
const KINDS = {
  chat: { key: "admin_models_kind_chat" },
  speech_to_text: { key: "admin_models_kind_speech_to_text" },
  text_to_speech: { key: "admin_models_kind_text_to_speech" },
  embeddings: { key: "admin_models_kind_embeddings" },
  ocr: { key: "admin_models_kind_ocr" },
  image: { key: "admin_models_kind_image" },
};

export class ModelsView {
  constructor(section, { showError }) {
    this.section = section;
    this.showError = showError;
    this.models = [];
    this.pulling = false;
    this.render();
  }

  show() {
    this.load();
  }

  hide() {}

  async load() {
    try {
      this.models = (await api("GET", "/v1/models")).data;
      this.fill();
    } catch (err) {
      this.showError(err);
    }
  }

  render() {
    this.input = el("input", {
      id: "pull-name", type: "text", list: "pull-suggestions", required: true,
      autocomplete: "off", spellcheck: "false", "aria-describedby": "pull-hint",
    });
    this.button = el("button", { type: "submit", id: "pull-button", className: "button primary",
      text: t("admin_models_pull") });
    this.progress = el("progress", { id: "pull-progress", "aria-labelledby": "pull-step" });
    this.progress.hidden = !this.pulling;
    this.step = el("p", { id: "pull-step", className: "note" });
    this.announce = el("p", { id: "pull-status", role: "status" });
    const form = el(
      "form",
      { id: "pull-form", className: "toolbar" },
      el("div", { className: "field" },
        el("label", { for: "pull-name", text: t("admin_models_name") }),
        this.input,
        el("datalist", { id: "pull-suggestions" },
          ...SUGGESTED.map((name) => el("option", { value: name })))),
      this.button,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = this.input.value.trim();
      if (name && !this.pulling) this.pull(name);
    });
    this.body = el("tbody");
    this.section.replaceChildren(
      el("h1", { id: "models-title", tabindex: "-1", text: t("admin_models_title") }),
      el("p", { className: "note", id: "pull-hint", text: t("admin_models_intro") }),
      form,
      this.progress,
      this.step,
      this.announce,
      el("div", { className: "table-wrap", tabindex: "0" }, el(
        "table",
        { className: "data-table", id: "models-table" },
        el("caption", { text: t("admin_models_caption") }),
        el("thead", {}, el("tr", {},
          el("th", { scope: "col", text: t("admin_models_model") }),
          el("th", { scope: "col", text: t("admin_models_kind") }))),
        this.body,
      )),
    );
    this.section.setAttribute("aria-labelledby", "models-title");
    this.fill();
  }

  fill() {
    this.body.replaceChildren(...this.models.map((m) => {
      const kind = m.iaforall?.kind;
      return el("tr", { "data-model": m.id },
        el("th", { scope: "row", text: m.id }),
        el("td", { text: KINDS[kind] ? t(KINDS[kind].key) : kind || "" }));
    }));
  }

  async pull(name) {
    this.pulling = true;
    this.button.disabled = true;
    this.progress.hidden = false;
    this.progress.removeAttribute("value");
    this.showError(null);
    say(this.announce, t("admin_models_pulling", { name }));
    try {
      for await (const event of apiLines("POST", "/api/pull", { model: name })) {
        if (event.total) {
          this.progress.max = event.total;
          this.progress.value = event.completed || 0;
          const done = formatNumber(Math.round((100 * (event.completed || 0)) / event.total));
          this.step.textContent = `${event.status} (${done} %)`;
        } else {
          this.step.textContent = event.status;
        }
      }
      this.step.textContent = "";
      say(this.announce, t("admin_models_pulled", { name }));
      await this.load();
    } catch (err) {
      this.step.textContent = "";
      // The server's reason (the names it can pull…) where it is an answer, said in the
      // page's language; a lost connection, as the app says it everywhere.
      const answered = err.kind === "http" || err.kind === "stream";
      const detail = answered ? explain(err) : describeError(err);
      say(this.announce, t("admin_models_failed", { name, detail }));
    } finally {
      this.pulling = false;
      this.button.disabled = false;
      this.progress.hidden = true;
    }
  }
}
