// "/image a lighthouse at dusk" (or "/dessin …") in the message box draws a picture with the
// server's image model (POST /v1/images/generations, streamed: a progress bar moves at each
// step), then keeps it in the conversation (POST …/pictures; a new chat is created for it), where
// messages.js shows it: the prompt as its alt text, a download link and "Another one" (a new
// seed). If keeping fails, the picture stays on screen with its download link. With no image
// model on the server, the command says why (the server's `iaforall doctor` row).

import { whyMissing } from "./about.js";
import { api, apiEvents, ApiError } from "./api.js";
import { t } from "./i18n.js";

const COMMAND = /^\/(?:image|dessin)\s+(\S[\s\S]*)$/i;

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** host: { container, announce(text), showError(err), capability() -> the doctor's "drawing"
 *         row or null, ensureConversation() -> the open conversation (created if new),
 *         conversation(), addMessage(message) -> shown in the conversation } */
export class Drawing {
  constructor(host) {
    this.host = host;
    this.model = undefined; // unknown until asked; null: none installed
  }

  /** The prompt when `text` asks for a picture, else null. */
  promptOf(text) {
    const match = COMMAND.exec(text.trim());
    return match ? match[1].trim() : null;
  }

  async imageModel() {
    if (this.model === undefined) {
      const listed = await api("GET", "/v1/models");
      this.model = listed.data.find((m) => m.iaforall?.kind === "image")?.id ?? null;
    }
    return this.model;
  }

  /** Draw `prompt` below the conversation; false when nothing was drawn (said why). */
  async draw(prompt) {
    let model;
    try {
      model = await this.imageModel();
    } catch (err) {
      this.host.showError(err);
      return false;
    }
    if (!model) {
      const row = this.host.capability?.();
      const why = row && row.status !== "ok" ? { why: whyMissing(row) } : null;
      this.host.showError(
        why ? { i18nKey: "draw_unavailable_why", vars: why } : { i18nKey: "draw_unavailable", vars: {} },
      );
      return false;
    }
    const openAt = this.host.conversation().id; // kept there, wherever the user goes meanwhile
    const status = element("p", { class: "drawn-status", role: "status" }, t("draw_waiting"));
    const progress = element("progress", { max: "1", value: "0" });
    progress.setAttribute("aria-label", t("draw_progress_label"));
    const figure = element("figure", { class: "drawn" }, status, progress);
    this.host.container.append(figure);
    figure.scrollIntoView({ block: "end" });
    let drawn = null;
    try {
      const body = { model, prompt, stream: true, output_format: "png" };
      for await (const { data } of apiEvents("POST", "/v1/images/generations", body)) {
        const event = JSON.parse(data);
        if (event.error) throw new ApiError("stream", event.error);
        if (event.type === "iaforall.image_progress") {
          progress.max = event.steps;
          progress.value = event.step;
          status.textContent = t("draw_progress", { step: event.step, steps: event.steps });
        } else if (event.type === "image_generation.completed") {
          drawn = event;
          this.show(figure, prompt, event);
        }
      }
    } catch (err) {
      figure.remove();
      this.host.showError(err);
      return false;
    }
    if (drawn) await this.keep({ prompt, model, event: drawn, openAt });
    this.host.announce(t("draw_done", { prompt })); // once, kept or not
    return true;
  }

  /** The picture kept in the conversation (a new chat is created for it): the stored message
   * then replaces the live figure (when the conversation is drawn again: at once, or when the
   * answer being written ends). If it cannot be kept, the error says why and the picture stays
   * on screen, to download. */
  async keep({ prompt, model, event, openAt }) {
    try {
      const id = openAt ?? (await this.host.ensureConversation()).id;
      const image = { url: `data:image/${event.output_format};base64,${event.b64_json}`, name: nameOf(event) };
      const path = `/web/api/conversations/${encodeURIComponent(id)}/pictures`;
      const message = await api("POST", path, { prompt, model, image });
      if (this.host.conversation().id !== id) return; // the user went elsewhere: shown there
      this.host.addMessage(message);
    } catch (err) {
      this.host.showError(err);
    }
  }

  show(figure, prompt, event) {
    // A blob: URL (the page's policy allows no data: images), kept as long as the page.
    const bytes = Uint8Array.from(atob(event.b64_json), (c) => c.charCodeAt(0));
    const source = URL.createObjectURL(new Blob([bytes], { type: `image/${event.output_format}` }));
    const image = element("img", { src: source, alt: prompt });
    const download = element(
      "a",
      { href: source, download: nameOf(event), class: "button subtle" },
      t("draw_download"),
    );
    const again = element("button", { type: "button", class: "button subtle" }, t("draw_again"));
    again.addEventListener("click", () => this.draw(prompt));
    const caption = element("figcaption", {}, element("span", {}, prompt), download, again);
    figure.replaceChildren(image, caption);
  }
}

/** The picture's file name: its seed, so another one of the same prompt is another file. */
function nameOf(event) {
  return `image-${event.iaforall?.seed ?? ""}.${event.output_format}`;
}
