// Knowledge bases: the user's own (and those shared with them, read only), their files as the
// server reads them, and which bases the open conversation answers from. While files are being
// read the dialog asks for their progress every second, and stops when it closes. With accounts,
// the owner of a base shares it (read only) by a person's name; and a conversation may also
// answer from single files, whatever base they are in.

import { currentSession } from "./account.js";
import { ApiError, api, apiForm, describeError, explain } from "./api.js";
import { confirmDialog, openDialog } from "./dialogs.js";
import { el, say } from "./dom.js";
import { currentLanguage, formatNumber, t, tCount } from "./i18n.js";

const BASE = "/v1/knowledge_bases";
const ACCEPT = ".pdf,.docx,.pptx,.xlsx,.html,.htm,.md,.txt,.csv";
const BUSY = new Set(["queued", "reading", "embedding"]);
const $ = (id) => document.getElementById(id);
const basePath = (id) => `${BASE}/${encodeURIComponent(id)}`;

/** The original file of a cited passage (a PDF opens at the cited page). */
export function fileUrl(kbId, documentId, page = null) {
  const path = `${basePath(kbId)}/files/${encodeURIComponent(documentId)}/content`;
  return page ? `${path}#page=${page}` : path;
}

/** "a, b and c" in the page's language. */
export function listOf(names) {
  try {
    return new Intl.ListFormat(currentLanguage(), { type: "conjunction" }).format(names);
  } catch {
    return names.join(", ");
  }
}

const WORKING = {
  queued: { key: "knowledge_status_queued" },
  reading: { key: "knowledge_status_reading" },
  embedding: { key: "knowledge_status_embedding" },
};

/** Why a file could not be read (stored with its code), in the page's language. */
function failure(file) {
  return file.error ? explain(file.error) : "";
}

function statusText(file) {
  if (file.status === "ready") {
    return `${t("knowledge_status_ready")} (${tCount("knowledge_passages", file.chunks || 0)})`;
  }
  if (file.status === "failed") {
    return t("knowledge_status_failed", { detail: failure(file) });
  }
  const { key } = WORKING[file.status] || WORKING.queued;
  return t(key, { percent: formatNumber(file.progress || 0, { style: "percent" }) });
}

/**
 * host: { conversation() -> the open conversation (id null until created),
 *         save(fields) -> Promise: PATCHed, or kept for the chat not created yet,
 *         onError(err) for what cannot be shown in the dialog }
 */
export class KnowledgePanel {
  constructor(host) {
    this.host = host;
    this.dialog = $("knowledge-dialog");
    this.list = $("knowledge-list");
    this.bases = [];
    this.files = new Map(); // base id -> its files, as last listed
    this.loaded = false;
    this.filesLoaded = false; // every base's files listed: chosen files that are gone are known
    this.timer = 0;
    this.ticking = false;
    this.sending = 0; // upload batches under way
    this.counter = 0;
    $("knowledge-button").addEventListener("click", () => this.open());
    $("knowledge-line-button").addEventListener("click", () => this.open());
    $("knowledge-close").addEventListener("click", () => this.dialog.close());
    $("knowledge-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    $("knowledge-name").addEventListener("input", (event) => {
      event.target.removeAttribute("aria-invalid");
    });
    this.dialog.addEventListener("close", () => this.stopPolling());
    // Files dropped on the list go to the base they are dropped on (or the only one there is);
    // anywhere else in the dialog, the browser must not open them in place of the app.
    this.dialog.addEventListener("dragover", (event) => {
      if ([...(event.dataTransfer?.items || [])].some((i) => i.kind === "file")) event.preventDefault();
    });
    this.dialog.addEventListener("drop", (event) => {
      const files = [...(event.dataTransfer?.files || [])];
      if (!files.length) return;
      event.preventDefault();
      this.dropped(event.target, files);
    });
  }

  /** The bases this conversation answers from (those that still exist, once known). */
  selected() {
    const wanted = this.host.conversation().knowledge || [];
    if (!this.loaded) return [...wanted];
    return wanted.filter((id) => this.bases.some((b) => b.id === id));
  }

  /** The single files this conversation answers from (those that still exist, once known). */
  selectedFiles() {
    const wanted = this.host.conversation().knowledge_files || [];
    if (!this.filesLoaded) return [...wanted];
    return wanted.filter((id) => this.fileById(id));
  }

  fileById(id) {
    for (const files of this.files.values()) {
      const found = files.find((f) => f.id === id);
      if (found) return found;
    }
    return null;
  }

  /** Sharing is offered only with accounts (without them there is only one user). */
  sharing() {
    return Boolean(currentSession().auth);
  }

  /** The bases (not their files), for the line above the message box. */
  async load() {
    try {
      this.bases = (await api("GET", BASE)).data;
      this.loaded = true;
    } catch {
      // Not worth an alert at start: the dialog says what is wrong when opened.
    }
    this.renderLine();
  }

  async open() {
    this.showError(null);
    $("knowledge-status").textContent = "";
    await this.refresh();
    openDialog(this.dialog, this.list.querySelector("input[type=checkbox]") || $("knowledge-name"));
    this.poll();
  }

  async refresh() {
    try {
      this.bases = (await api("GET", BASE)).data;
      this.loaded = true;
      await Promise.all(this.bases.map((base) => this.loadFiles(base.id)));
      this.filesLoaded = true;
    } catch (err) {
      this.showError(err);
    }
    this.render();
  }

  async loadFiles(kbId) {
    const { data } = await api("GET", `${basePath(kbId)}/files`);
    const before = new Map((this.files.get(kbId) || []).map((f) => [f.id, f.status]));
    this.files.set(kbId, data);
    for (const file of data) {
      const was = before.get(file.id);
      if (!was || !BUSY.has(was) || BUSY.has(file.status)) continue;
      if (file.status === "ready") this.say(t("knowledge_announce_ready", { name: file.filename }));
      else if (file.status === "failed") {
        this.say(t("knowledge_announce_failed", { name: file.filename, detail: failure(file) }));
      }
    }
  }

  // ---------- drawing ----------

  render() {
    const empty = this.loaded && this.bases.length === 0;
    $("knowledge-empty").hidden = !empty;
    this.list.hidden = this.bases.length === 0;
    this.list.replaceChildren(...this.bases.map((base) => this.baseItem(base)));
    for (const base of this.bases) this.renderFiles(base.id);
    this.renderLine();
  }

  baseItem(base) {
    const n = ++this.counter;
    const owner = base.access === "owner";
    const headingId = `kb-${n}-name`;
    const checkbox = el("input", {
      type: "checkbox", id: `kb-${n}-use`, className: "kb-use", "aria-describedby": headingId,
    });
    checkbox.checked = this.selected().includes(base.id);
    checkbox.addEventListener("change", () => this.use(base, checkbox));
    const item = el(
      "li",
      { className: "kb", "data-id": base.id },
      el(
        "div",
        { className: "kb-head" },
        el("h3", { id: headingId, className: "kb-name", text: base.name }),
        el("p", { className: "kb-meta note" }),
      ),
      el(
        "div",
        { className: "check-field" },
        checkbox,
        el("label", { for: checkbox.id, text: t("knowledge_use") }),
      ),
    );
    const files = el("ul", {
      className: "kb-files", "aria-label": t("knowledge_files_of", { name: base.name }),
    });
    if (!owner) {
      item.append(files);
      return item;
    }
    const input = el("input", {
      type: "file", multiple: true, accept: ACCEPT, hidden: true, tabindex: "-1",
      className: "kb-file-input",
    });
    input.addEventListener("change", () => {
      const chosen = [...input.files];
      input.value = "";
      if (chosen.length) this.upload(base, chosen);
    });
    const add = el("button", {
      type: "button", className: "button kb-add",
      "aria-label": t("knowledge_action_add_named", { name: base.name }),
      "aria-describedby": "knowledge-formats",
      text: t("knowledge_action_add"),
    });
    add.addEventListener("click", () => input.click());
    const remove = el("button", {
      type: "button", className: "button subtle danger-text kb-delete",
      "aria-label": t("knowledge_action_delete_base_named", { name: base.name }),
      text: t("knowledge_action_delete_base"),
    });
    remove.addEventListener("click", () => this.removeBase(base));
    item.append(
      el("div", { className: "kb-actions" }, add, input,
        el("span", { className: "note kb-drop", text: t("knowledge_drop_hint") })),
      files,
      this.sharing() ? this.shareSection(base, n) : null,
      // Deleting the whole base comes last, after everything it would delete.
      el("div", { className: "kb-foot" }, remove),
    );
    item.addEventListener("dragenter", () => item.classList.add("kb-dropping"));
    item.addEventListener("dragleave", (event) => {
      if (!item.contains(event.relatedTarget)) item.classList.remove("kb-dropping");
    });
    item.addEventListener("drop", () => item.classList.remove("kb-dropping"));
    return item;
  }

  itemOf(kbId) {
    return [...this.list.children].find((li) => li.dataset.id === kbId) || null;
  }

  /** A base's files, updated in place: focus stays where it is while progress moves. */
  renderFiles(kbId) {
    const item = this.itemOf(kbId);
    const base = this.bases.find((b) => b.id === kbId);
    if (!item || !base) return;
    const files = this.files.get(kbId) || [];
    const meta = [tCount("knowledge_files", this.files.has(kbId) ? files.length : base.file_counts?.total || 0)];
    if (base.access !== "owner") meta.push(t("knowledge_shared_read_only"));
    item.querySelector(".kb-meta").textContent = meta.join(" · ");
    const list = item.querySelector(".kb-files");
    const rows = new Map([...list.children].map((row) => [row.dataset.id, row]));
    const wanted = files.map((file) => {
      const row = rows.get(file.id) || this.fileRow(base, file);
      this.updateRow(row, file);
      return row;
    });
    for (const [id, row] of rows) if (!files.some((f) => f.id === id)) row.remove();
    wanted.forEach((row, index) => {
      if (list.children[index] !== row) list.insertBefore(row, list.children[index] || null);
    });
    list.hidden = files.length === 0;
  }

  fileRow(base, file) {
    const n = ++this.counter;
    const row = el(
      "li",
      { className: "kb-file", "data-id": file.id },
      el("span", { className: "kb-file-name", id: `kb-file-${n}`, text: file.filename }),
      el("span", { className: "kb-file-status" }),
      el("progress", { max: "1", "aria-label": t("knowledge_progress_label", { name: file.filename }) }),
    );
    const use = el("input", {
      type: "checkbox", id: `kb-file-${n}-use`, className: "kb-file-use",
      "aria-describedby": `kb-file-${n}`,
    });
    use.checked = this.selectedFiles().includes(file.id);
    use.addEventListener("change", () => this.useFile(file, use));
    row.append(el(
      "span",
      { className: "check-field kb-file-choice" },
      use,
      el("label", { for: use.id, text: t("knowledge_use_file") }),
    ));
    if (base.access === "owner") {
      const remove = el("button", {
        type: "button", className: "button subtle danger-text kb-file-delete",
        "aria-label": t("knowledge_action_delete_file_named", { name: file.filename }),
        text: t("action_delete"),
      });
      remove.addEventListener("click", () => this.removeFile(base, file));
      row.append(remove);
    }
    return row;
  }

  updateRow(row, file) {
    row.dataset.status = file.status;
    const status = row.querySelector(".kb-file-status");
    status.textContent = statusText(file);
    status.classList.toggle("danger-text", file.status === "failed");
    // Only a file that is read can be searched.
    row.querySelector(".kb-file-choice").hidden = file.status !== "ready";
    const progress = row.querySelector("progress");
    progress.hidden = !BUSY.has(file.status);
    if (file.status === "queued") progress.removeAttribute("value"); // not started: indeterminate
    else progress.value = file.progress || 0;
  }

  /** The line above the message box: which bases the answers come from, and a way to change. */
  renderLine() {
    const line = $("knowledge-line");
    const names = this.selected()
      .map((id) => this.bases.find((b) => b.id === id)?.name)
      .filter(Boolean);
    const files = this.selectedFiles();
    const known = files.map((id) => this.fileById(id)?.filename).filter(Boolean);
    names.push(...known);
    // Files not listed yet (the dialog not opened) are counted rather than named.
    if (files.length > known.length) names.push(tCount("knowledge_files", files.length - known.length));
    line.hidden = names.length === 0 && this.bases.length === 0;
    $("knowledge-line-text").textContent = names.length
      ? t("knowledge_line_using", { names: listOf(names) })
      : t("knowledge_line_none");
    line.classList.toggle("knowledge-line-active", names.length > 0);
  }

  // ---------- actions ----------

  say(text) {
    say($("knowledge-status"), text);
  }

  showError(err, name = null) {
    const region = $("knowledge-error");
    if (!err) {
      region.replaceChildren();
      return;
    }
    let text;
    if (name && err instanceof ApiError && err.kind === "http" && [400, 413, 415].includes(err.status)) {
      text = t("knowledge_upload_refused", { name, detail: explain(err) });
    } else if (err instanceof ApiError && err.status === 404) {
      text = t("knowledge_error_gone"); // deleted meanwhile (here or in another window)
      if (name) text = t("knowledge_upload_failed", { name, detail: text });
    } else {
      const { key, vars } = describeError(err);
      text = t(key, vars);
      if (name) text = t("knowledge_upload_failed", { name, detail: text });
    }
    region.append(el("p", { text }));
  }

  async create() {
    const input = $("knowledge-name");
    const name = input.value.trim();
    this.showError(null);
    if (!name) {
      input.setAttribute("aria-invalid", "true");
      $("knowledge-error").append(el("p", { text: t("knowledge_error_name") }));
      input.focus();
      return;
    }
    try {
      const base = await api("POST", BASE, { name });
      input.value = "";
      this.bases.push(base);
      this.files.set(base.id, []);
      this.render();
      this.say(t("knowledge_created", { name: base.name }));
      this.itemOf(base.id)?.querySelector(".kb-add")?.focus();
    } catch (err) {
      this.showError(err);
    }
  }

  async use(base, checkbox) {
    const on = checkbox.checked;
    const current = this.selected();
    const knowledge = on ? [...new Set([...current, base.id])] : current.filter((id) => id !== base.id);
    this.showError(null);
    try {
      await this.host.save({ knowledge });
      const done = on ? { key: "knowledge_announce_used" } : { key: "knowledge_announce_unused" };
      this.say(t(done.key, { name: base.name }));
    } catch (err) {
      checkbox.checked = !on;
      this.showError(err);
    }
    this.renderLine();
  }

  async useFile(file, checkbox) {
    const on = checkbox.checked;
    const current = this.selectedFiles();
    const knowledgeFiles = on
      ? [...new Set([...current, file.id])]
      : current.filter((id) => id !== file.id);
    this.showError(null);
    try {
      await this.host.save({ knowledge_files: knowledgeFiles });
      const done = on ? { key: "knowledge_announce_file_used" } : { key: "knowledge_announce_file_unused" };
      this.say(t(done.key, { name: file.filename }));
    } catch (err) {
      checkbox.checked = !on;
      this.showError(err);
    }
    this.renderLine();
  }

  /** Chosen files deleted (alone or with their base): the conversation forgets them too. */
  async forgetFiles() {
    const kept = this.selectedFiles();
    if (kept.length === (this.host.conversation().knowledge_files || []).length) return;
    await this.host.save({ knowledge_files: kept }).catch(() => {});
    this.renderLine();
  }

  // ---------- sharing (accounts only) ----------

  /** "Share…" opens a small form under the base: a person's name, and who already reads it. */
  shareSection(base, n) {
    const panelId = `kb-${n}-share`;
    const toggle = el("button", {
      type: "button", className: "button kb-share-toggle", "aria-expanded": "false",
      "aria-controls": panelId, "aria-describedby": `kb-${n}-name`,
      text: t("knowledge_action_share"),
    });
    const input = el("input", {
      type: "text", id: `kb-${n}-share-name`, className: "kb-share-name", maxlength: "64",
      autocomplete: "off", spellcheck: "false",
    });
    input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
    const form = el(
      "form",
      { className: "kb-share-form", novalidate: true },
      el("label", { for: input.id, text: t("knowledge_share_label", { name: base.name }) }),
      el("div", { className: "inline-row" }, input,
        el("button", { type: "submit", className: "button primary", text: t("knowledge_action_share_submit") })),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.share(base.id, input);
    });
    const panel = el(
      "div",
      { className: "kb-share", id: panelId, hidden: true },
      form,
      el("p", { className: "note kb-share-none", text: t("knowledge_share_none") }),
      el("ul", {
        className: "kb-share-list", "aria-label": t("knowledge_share_list_label", { name: base.name }),
      }),
    );
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      panel.hidden = !open;
      if (open) input.focus();
    });
    const section = el("div", { className: "kb-sharing" }, toggle, panel);
    this.renderShares(section, base);
    return section;
  }

  renderShares(section, base) {
    const names = base.shared_with_names || base.shared_with || [];
    const ids = base.shared_with || [];
    section.querySelector(".kb-share-none").hidden = names.length > 0;
    const list = section.querySelector(".kb-share-list");
    list.hidden = names.length === 0;
    list.replaceChildren(...names.map((name, i) => {
      const stop = el("button", {
        type: "button", className: "button subtle kb-unshare",
        "aria-label": t("knowledge_action_unshare_named", { name }),
        text: t("knowledge_action_unshare"),
      });
      stop.addEventListener("click", () => this.unshare(base.id, name, ids[i] || name));
      return el("li", { className: "kb-share-person" }, el("span", { text: name }), stop);
    }));
  }

  /** The base as the server now has it, its sharing redrawn in place (focus stays put). */
  adoptShared(updated) {
    const index = this.bases.findIndex((b) => b.id === updated.id);
    if (index !== -1) this.bases[index] = updated;
    const section = this.itemOf(updated.id)?.querySelector(".kb-sharing");
    if (section) this.renderShares(section, updated);
    return section;
  }

  shareError(err, name) {
    if (err instanceof ApiError && err.status === 404) {
      return t("knowledge_share_no_user", { name });
    }
    if (err instanceof ApiError && err.status === 403) return t("knowledge_share_not_owner");
    const { key, vars } = describeError(err);
    return t(key, vars);
  }

  async share(kbId, input) {
    const name = input.value.trim();
    this.showError(null);
    if (!name) {
      input.setAttribute("aria-invalid", "true");
      $("knowledge-error").append(el("p", { text: t("knowledge_share_error_name") }));
      input.focus();
      return;
    }
    try {
      const updated = await api("PUT", `${basePath(kbId)}/shares/${encodeURIComponent(name)}`);
      input.value = "";
      this.adoptShared(updated);
      this.say(t("knowledge_shared", { name, base: updated.name }));
    } catch (err) {
      input.setAttribute("aria-invalid", "true");
      $("knowledge-error").append(el("p", { text: this.shareError(err, name) }));
    }
    input.focus();
  }

  async unshare(kbId, name, ref) {
    this.showError(null);
    try {
      const updated = await api("DELETE", `${basePath(kbId)}/shares/${encodeURIComponent(ref)}`);
      const section = this.adoptShared(updated);
      this.say(t("knowledge_unshared", { name, base: updated.name }));
      section?.querySelector(".kb-share-name")?.focus();
    } catch (err) {
      $("knowledge-error").append(el("p", { text: this.shareError(err, name) }));
    }
  }

  dropped(target, files) {
    const item = target.closest?.(".kb");
    const owned = this.bases.filter((b) => b.access === "owner");
    const base = item
      ? this.bases.find((b) => b.id === item.dataset.id)
      : owned.length === 1 ? owned[0] : null;
    if (!base || base.access !== "owner") {
      this.showError(null);
      $("knowledge-error").append(el("p", { text: t("knowledge_drop_where") }));
      return;
    }
    this.upload(base, files);
  }

  /** One request per file: a refused file (named in the message) does not stop the others. */
  async upload(base, files) {
    // Another batch still being sent keeps its messages: they are cleared by the next batch.
    if (!this.sending) this.showError(null);
    this.sending += 1;
    try {
      await this.send(base, files);
    } finally {
      this.sending -= 1;
    }
  }

  async send(base, files) {
    const accepted = [];
    const known = [];
    for (const file of files) {
      $("knowledge-status").textContent = t("knowledge_sending", { name: file.name });
      const form = new FormData();
      form.append("file", file, file.name);
      try {
        const { data } = await apiForm(`${basePath(base.id)}/files`, form);
        const list = this.files.get(base.id) || [];
        for (const added of data) {
          (added.duplicate ? known : accepted).push(added.filename);
          if (!list.some((f) => f.id === added.id)) list.push(added);
        }
        this.files.set(base.id, list);
        this.renderFiles(base.id);
      } catch (err) {
        this.showError(err, file.name);
      }
    }
    const said = [];
    if (accepted.length) said.push(t("knowledge_announce_accepted", { names: listOf(accepted) }));
    if (known.length) said.push(t("knowledge_announce_duplicate", { names: listOf(known) }));
    if (said.length) this.say(said.join(" "));
    else $("knowledge-status").textContent = "";
    this.poll();
  }

  async removeFile(base, file) {
    const ok = await confirmDialog({
      title: t("knowledge_delete_file_title"),
      message: t("knowledge_delete_file_message", { name: file.filename, base: base.name }),
      confirmLabel: t("action_delete"),
    });
    if (!ok) return;
    this.showError(null);
    const list = this.files.get(base.id) || [];
    const index = list.findIndex((f) => f.id === file.id);
    try {
      await api("DELETE", `${basePath(base.id)}/files/${encodeURIComponent(file.id)}`);
      if (index !== -1) list.splice(index, 1);
      await this.forgetFiles();
      this.renderFiles(base.id);
      this.say(t("knowledge_file_deleted", { name: file.filename }));
      const item = this.itemOf(base.id);
      const buttons = item?.querySelectorAll(".kb-file-delete") || [];
      (buttons[Math.min(index, buttons.length - 1)] || item?.querySelector(".kb-add"))?.focus();
    } catch (err) {
      this.showError(err);
    }
  }

  async removeBase(base) {
    const ok = await confirmDialog({
      title: t("knowledge_delete_base_title"),
      message: t("knowledge_delete_base_message", { name: base.name }),
      confirmLabel: t("action_delete"),
    });
    if (!ok) return;
    this.showError(null);
    try {
      await api("DELETE", basePath(base.id));
    } catch (err) {
      this.showError(err);
      return;
    }
    const wasUsed = this.selected().includes(base.id);
    this.bases = this.bases.filter((b) => b.id !== base.id);
    this.files.delete(base.id);
    if (wasUsed) {
      // The server already leaves a deleted base out; the conversation forgets it too.
      await this.host.save({ knowledge: this.selected() }).catch(() => {});
    }
    await this.forgetFiles();
    this.render();
    this.say(t("knowledge_deleted", { name: base.name }));
    $("knowledge-name").focus();
  }

  // ---------- following the reading ----------

  busy() {
    return this.bases.filter((b) => (this.files.get(b.id) || []).some((f) => BUSY.has(f.status)));
  }

  poll() {
    if (this.timer || !this.dialog.open || !this.busy().length) return;
    this.timer = setInterval(() => this.tick(), 1000);
  }

  async tick() {
    if (this.ticking) return;
    this.ticking = true;
    try {
      for (const base of this.busy()) {
        try {
          await this.loadFiles(base.id);
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 404)) throw err;
          this.files.delete(base.id); // deleted meanwhile: nothing more to follow there
        }
        this.renderFiles(base.id);
      }
    } catch (err) {
      this.showError(err);
      this.stopPolling();
    } finally {
      this.ticking = false;
    }
    if (!this.busy().length) this.stopPolling();
  }

  stopPolling() {
    clearInterval(this.timer);
    this.timer = 0;
  }
}
