// Images attached to the next message: chosen with the button, pasted, or dropped on the
// message box; shown as previews, each with a button to remove it. They stay until the server
// has stored the message, like the typed text, so a failed send loses nothing.

import { t } from "./i18n.js";

const TYPES = new Set(["image/png", "image/jpeg", "image/webp", "image/gif"]);
const MAX_BYTES = 20_000_000; // the server's default IAFORALL_IMAGE_MAX_BYTES; it checks again

const $ = (id) => document.getElementById(id);

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.addEventListener("load", () => resolve(reader.result));
    reader.addEventListener("error", () => reject(reader.error));
    reader.readAsDataURL(file);
  });
}

/** host: { announce(text), showError({i18nKey, vars}), focus() } */
export class Attachments {
  constructor(host) {
    this.host = host;
    this.list = $("attachments");
    this.items = []; // { name, url (data URL, sent), preview (object URL, shown) }
    $("attach-button").addEventListener("click", () => $("attach-file").click());
    $("attach-file").addEventListener("change", (event) => {
      const files = [...event.target.files];
      event.target.value = "";
      this.add(files);
    });
    const input = $("composer-input");
    input.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files || [])].filter((f) => f.type.startsWith("image/"));
      if (!files.length) return;
      event.preventDefault();
      this.add(files);
    });
    const box = $("composer");
    box.addEventListener("dragover", (event) => {
      if ([...(event.dataTransfer?.items || [])].some((i) => i.kind === "file")) event.preventDefault();
    });
    box.addEventListener("drop", (event) => {
      const files = [...(event.dataTransfer?.files || [])];
      if (!files.length) return;
      event.preventDefault();
      this.add(files);
    });
  }

  get count() {
    return this.items.length;
  }

  async add(files) {
    for (const file of files) {
      if (!TYPES.has(file.type)) {
        this.host.showError({ i18nKey: "error_image_type", vars: { name: file.name } });
        continue;
      }
      if (file.size > MAX_BYTES) {
        this.host.showError({ i18nKey: "error_image_size", vars: { name: file.name } });
        continue;
      }
      try {
        const url = await readAsDataUrl(file);
        this.items.push({ name: file.name, url, preview: URL.createObjectURL(file) });
        this.host.announce(t("announce_image_attached", { name: file.name }));
      } catch {
        this.host.showError({ i18nKey: "error_image_type", vars: { name: file.name } });
      }
    }
    this.render();
  }

  /** What the reply sends: [{url, name}], or undefined when nothing is attached. */
  payload() {
    return this.items.length ? this.items.map(({ url, name }) => ({ url, name })) : undefined;
  }

  /** Previews of what is being sent, for the message shown before the server confirms it. */
  previews() {
    return this.items.map(({ preview, name }) => ({ src: preview, name }));
  }

  /** While a message with them is being sent, they show in the message, not here. */
  hide() {
    this.list.hidden = true;
  }

  /** The images now belong to a stored message: forget them here. */
  clear() {
    for (const item of this.items) URL.revokeObjectURL(item.preview);
    this.items = [];
    this.render();
  }

  remove(index) {
    const [item] = this.items.splice(index, 1);
    URL.revokeObjectURL(item.preview);
    this.render();
    this.host.announce(t("announce_image_removed", { name: item.name }));
    const buttons = this.list.querySelectorAll("button");
    (buttons[Math.min(index, buttons.length - 1)] || $("attach-button")).focus();
  }

  render() {
    this.list.hidden = !this.items.length;
    this.list.replaceChildren(
      ...this.items.map((item, index) => {
        const row = document.createElement("li");
        row.className = "attachment";
        const image = document.createElement("img");
        image.src = item.preview;
        image.alt = t("image_alt", { name: item.name });
        const name = document.createElement("span");
        name.className = "attachment-name";
        name.textContent = item.name;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "icon-button attachment-remove";
        remove.setAttribute("aria-label", t("action_remove_image", { name: item.name }));
        remove.title = remove.getAttribute("aria-label");
        remove.textContent = "×";
        remove.addEventListener("click", () => this.remove(index));
        row.append(image, name, remove);
        return row;
      }),
    );
  }
}
