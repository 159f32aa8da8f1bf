// "About this server": what works here and what does not, why, and the command that fixes it
// (the server's `iaforall doctor` table, from /web/api/capabilities). The same table tells the
// composer which tools to offer: a missing piece is disabled with its reason, before any click.

import { api } from "./api.js";
import { openDialog } from "./dialogs.js";
import { currentLanguage, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

// Each capability's name and each status, as catalogue keys.
const TITLES = {
  chat: { key: "capability_chat" },
  speech_to_text_en: { key: "capability_speech_to_text_en" },
  speech_to_text_fr: { key: "capability_speech_to_text_fr" },
  text_to_speech_en: { key: "capability_text_to_speech_en" },
  text_to_speech_fr: { key: "capability_text_to_speech_fr" },
  images: { key: "capability_images" },
  drawing: { key: "capability_drawing" },
  embeddings: { key: "capability_embeddings" },
  knowledge: { key: "capability_knowledge" },
  database: { key: "capability_database" },
  cluster: { key: "capability_cluster" },
};
const STATUSES = {
  ok: { key: "capability_ok" },
  missing: { key: "capability_missing" },
  broken: { key: "capability_broken" },
};
// What each status means, for a page that does not speak the server's language (English): the
// server's reasons are English sentences, shown on English pages only.
const WHY = {
  ok: { key: "capability_why_ok" },
  missing: { key: "capability_why_missing" },
  broken: { key: "capability_why_broken" },
};

/** Why a capability is missing, for a sentence in the page's language: the server's reason
 * (English) on an English page, else a pointer to this table, where it is shown marked English. */
export function whyMissing(row) {
  return currentLanguage() === "en" ? row.why : { key: "capability_why_elsewhere" };
}

export class About {
  constructor() {
    this.rows = []; // the server's table; empty until read (then nothing is disabled)
    $("about-button").addEventListener("click", () => this.open());
    $("about-close").addEventListener("click", () => $("about-dialog").close());
  }

  async load() {
    try {
      this.rows = (await api("GET", "/web/api/capabilities")).data;
    } catch {
      this.rows = []; // an older server, or trouble: offer everything, as before
    }
    this.render();
  }

  row(id) {
    return this.rows.find((r) => r.id === id) || null;
  }

  /** The row for speech to text in the current language. */
  hearing() {
    return this.row(currentLanguage().startsWith("fr") ? "speech_to_text_fr" : "speech_to_text_en");
  }

  /** The row for text to speech in the current language. */
  speaking() {
    return this.row(currentLanguage().startsWith("fr") ? "text_to_speech_fr" : "text_to_speech_en");
  }

  open() {
    this.render();
    openDialog($("about-dialog"), $("about-close"));
  }

  render() {
    this.renderTable();
    this.renderTools();
  }

  renderTable() {
    $("about-rows").replaceChildren(
      ...this.rows.map((r) => {
        const tr = document.createElement("tr");
        tr.dataset.capability = r.id;
        tr.dataset.status = r.status;
        const name = document.createElement("th");
        name.scope = "row";
        name.textContent = TITLES[r.id] ? t(TITLES[r.id].key) : r.title;
        const status = document.createElement("td");
        status.className = `capability-${r.status}`;
        status.textContent = STATUSES[r.status] ? t(STATUSES[r.status].key) : r.status;
        const why = document.createElement("td");
        const reason = document.createElement("span");
        if (currentLanguage() === "en" || !WHY[r.status]) {
          reason.lang = "en"; // the server's words
          reason.textContent = r.why;
        } else {
          reason.textContent = t(WHY[r.status].key);
        }
        why.append(reason);
        if (r.fix) {
          const fix = document.createElement("code");
          fix.textContent = r.fix;
          why.append(document.createElement("br"), t("capability_fix"), " ", fix);
        }
        tr.append(name, status, why);
        return tr;
      }),
    );
  }

  /** The microphone and the conversation mode need speech to text in the chosen language;
   * images need OCR. What is missing is disabled, and says why. */
  renderTools() {
    const hearing = this.hearing();
    const deaf = hearing && hearing.status !== "ok";
    const note = $("voice-unavailable");
    note.hidden = !deaf;
    note.textContent = deaf ? t("voice_unavailable", { why: whyMissing(hearing) }) : "";
    for (const button of [$("mic-button"), $("handsfree-button")]) {
      button.disabled = Boolean(deaf);
      if (deaf) button.setAttribute("aria-describedby", "voice-unavailable");
      else if (button.id === "handsfree-button") button.setAttribute("aria-describedby", "voice-status");
      else button.removeAttribute("aria-describedby");
    }
    const images = this.row("images");
    const blind = images && images.status !== "ok";
    const attach = $("attach-button");
    attach.disabled = Boolean(blind);
    attach.title = blind ? t("images_unavailable", { why: whyMissing(images) }) : t("action_attach_image");
  }
}
