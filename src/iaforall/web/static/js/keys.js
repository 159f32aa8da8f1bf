// API keys: a list (name, created, last used, revoked), a form to create one (shown once, with
// a copy button) and revoking with confirmation. The same panel serves "My API keys" in the app
// and an administrator's view of one person's keys.

import { api, describeError } from "./api.js";
import { confirmDialog } from "./dialogs.js";
import { el, say } from "./dom.js";
import { formatDate, t } from "./i18n.js";

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // The clipboard API needs a secure context (a LAN address over http is not): old way.
    const area = el("textarea", { readonly: true, className: "visually-hidden" });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

/** Endpoints for one person's keys: their own (/web/api/keys) or, for an admin, anyone's. */
export const ownKeys = {
  list: () => api("GET", "/web/api/keys"),
  create: (name) => api("POST", "/web/api/keys", { name }),
  revoke: (id) => api("DELETE", `/web/api/keys/${encodeURIComponent(id)}`),
};

export function userKeys(userId) {
  const user = encodeURIComponent(userId);
  return {
    list: () => api("GET", `/admin/api/keys?user=${user}`),
    create: (name) => api("POST", `/admin/api/users/${user}/keys`, { name }),
    revoke: (id) => api("DELETE", `/admin/api/keys/${encodeURIComponent(id)}`),
  };
}

/**
 * Draws into `root`; `prefix` keeps the ids unique when two panels could exist on a page.
 * endpoints: { list(), create(name), revoke(id) }; onError(err) for what cannot be shown here.
 */
export class KeysPanel {
  constructor(root, { prefix, endpoints, headingLevel = "h3" }) {
    this.root = root;
    this.prefix = prefix;
    this.endpoints = endpoints;
    this.keys = [];
    this.build(headingLevel);
  }

  id(name) {
    return `${this.prefix}-${name}`;
  }

  build(headingLevel) {
    const nameInput = el("input", {
      id: this.id("name"), type: "text", maxlength: "100", autocomplete: "off",
      "aria-describedby": this.id("name-note"),
    });
    this.nameInput = nameInput;
    const form = el(
      "form",
      { className: "keys-form", novalidate: true },
      el(
        "div",
        { className: "field" },
        el("label", { for: this.id("name"), text: t("keys_label_name") }),
        el("div", { className: "inline-row" }, nameInput,
          el("button", { type: "submit", className: "button primary", text: t("keys_action_create") })),
        el("p", { id: this.id("name-note"), className: "note", text: t("keys_name_note") }),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });

    this.secret = el("input", {
      id: this.id("secret"), type: "text", readonly: true, className: "key-secret",
      spellcheck: "false", autocomplete: "off",
    });
    const copy = el("button", { type: "button", className: "button", text: t("keys_action_copy") });
    copy.addEventListener("click", async () => {
      const ok = await copyText(this.secret.value);
      this.say(t(ok ? "keys_copied" : "copy_failed"));
    });
    const done = el("button", { type: "button", className: "button subtle", text: t("keys_action_done") });
    done.addEventListener("click", () => {
      this.secret.value = "";
      this.fresh.hidden = true;
      this.nameInput.focus();
    });
    this.copyButton = copy;
    this.fresh = el(
      "section",
      { className: "new-key", hidden: true, "aria-labelledby": this.id("fresh-heading") },
      el(headingLevel, { id: this.id("fresh-heading"), text: t("keys_new_heading") }),
      el("p", { className: "new-key-warning", id: this.id("fresh-warning"), text: t("keys_new_warning") }),
      el("label", { for: this.id("secret"), className: "visually-hidden", text: t("keys_label_secret") }),
      el("div", { className: "inline-row" }, this.secret, copy),
      el("div", { className: "dialog-actions" }, done),
    );
    this.secret.setAttribute("aria-describedby", this.id("fresh-warning"));

    this.status = el("p", { className: "status", role: "status" });
    this.error = el("div", { className: "inline-error", role: "alert" });
    this.body = el("tbody");
    this.empty = el("p", { className: "note", text: t("keys_none"), hidden: true });
    this.table = el(
      "div",
      { className: "table-wrap", tabindex: "0" },
      el(
        "table",
        { className: "data-table" },
        el("caption", { className: "visually-hidden", text: t("keys_table_caption") }),
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ...[
              { key: "keys_col_name" }, { key: "keys_col_created" },
              { key: "keys_col_last_used" }, { key: "keys_col_status" },
            ].map((column) => el("th", { scope: "col", text: t(column.key) })),
            el("th", { scope: "col" }, el("span", { className: "visually-hidden", text: t("keys_col_actions") })),
          ),
        ),
        this.body,
      ),
    );
    this.root.replaceChildren(form, this.fresh, this.error, this.status, this.table, this.empty);
  }

  say(text) {
    say(this.status, text);
  }

  showError(err) {
    if (!err) {
      this.error.replaceChildren();
      return;
    }
    const { key, vars } = describeError(err);
    this.error.replaceChildren(el("p", { text: t(key, vars) }));
  }

  async refresh() {
    try {
      this.keys = (await this.endpoints.list()).data;
      this.render();
    } catch (err) {
      this.showError(err);
    }
  }

  render() {
    const never = t("keys_never");
    this.body.replaceChildren(
      ...this.keys.map((key) => {
        const name = key.name || t("keys_unnamed");
        const revoke = el("button", {
          type: "button", className: "button subtle danger-text",
          "aria-label": t("keys_action_revoke_named", { name }), text: t("keys_action_revoke"),
        });
        revoke.addEventListener("click", () => this.revoke(key));
        return el(
          "tr",
          { className: key.revoked_at ? "revoked" : null },
          el("th", { scope: "row", text: name }),
          el("td", { text: formatDate(key.created_at) }),
          el("td", { text: key.last_used_at ? formatDate(key.last_used_at) : never }),
          el("td", {
            text: key.revoked_at
              ? t("keys_status_revoked", { date: formatDate(key.revoked_at) })
              : t("keys_status_active"),
          }),
          el("td", {}, key.revoked_at ? "" : revoke),
        );
      }),
    );
    this.table.hidden = this.keys.length === 0;
    this.empty.hidden = this.keys.length !== 0;
  }

  async create() {
    this.showError(null);
    try {
      const key = await this.endpoints.create(this.nameInput.value.trim());
      this.nameInput.value = "";
      this.secret.value = key.key;
      this.fresh.hidden = false;
      this.secret.focus();
      this.secret.select();
      this.say(t("keys_created", { name: key.name || t("keys_unnamed") }));
      await this.refresh();
    } catch (err) {
      this.showError(err);
    }
  }

  async revoke(key) {
    const name = key.name || t("keys_unnamed");
    const ok = await confirmDialog({
      title: t("keys_revoke_title"),
      message: t("keys_revoke_message", { name }),
      confirmLabel: t("keys_action_revoke"),
    });
    if (!ok) return;
    this.showError(null);
    try {
      await this.endpoints.revoke(key.id);
      this.say(t("keys_revoked", { name }));
      await this.refresh();
      this.nameInput.focus();
    } catch (err) {
      this.showError(err);
    }
  }
}
