// "/image a lighthouse at dusk" (or "/dessin …") in the message box draws a picture with the
// server's image model (POST /v1/images/generations, streamed: a progress bar moves at each
// step), shown below the conversation with the prompt as its alt text, a download link and
// "Another one" (a new seed). With no image model on the server, the command says so.

import { api, apiEvents, ApiError } from "./api.js";
import { t } from "./i18n.js";

const COMMAND = /^\/(?:image|dessin)\s+(\S[\s\S]*)$/i;

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** host: { container, announce(text), showError(err) } */
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
      this.host.showError({ i18nKey: "draw_unavailable", vars: {} });
      return false;
    }
    const status = element("p", { class: "drawn-status", role: "status" }, t("draw_waiting"));
    const progress = element("progress", { max: "1", value: "0" });
    progress.setAttribute("aria-label", t("draw_progress_label"));
    const figure = element("figure", { class: "drawn" }, status, progress);
    this.host.container.append(figure);
    figure.scrollIntoView({ block: "end" });
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
          this.show(figure, prompt, event);
        }
      }
    } catch (err) {
      figure.remove();
      this.host.showError(err);
      return false;
    }
    return true;
  }

  show(figure, prompt, event) {
    // A blob: URL (the page's policy allows no data: images), kept as long as the page.
    const bytes = Uint8Array.from(atob(event.b64_json), (c) => c.charCodeAt(0));
    const source = URL.createObjectURL(new Blob([bytes], { type: `image/${event.output_format}` }));
    const seed = event.iaforall?.seed ?? "";
    const image = element("img", { src: source, alt: prompt });
    const download = element(
      "a",
      { href: source, download: `image-${seed}.${event.output_format}`, class: "button subtle" },
      t("draw_download"),
    );
    const again = element("button", { type: "button", class: "button subtle" }, t("draw_again"));
    again.addEventListener("click", () => this.draw(prompt));
    const caption = element("figcaption", {}, element("span", {}, prompt), download, again);
    figure.replaceChildren(image, caption);
    this.host.announce(t("draw_done", { prompt }));
  }
}
