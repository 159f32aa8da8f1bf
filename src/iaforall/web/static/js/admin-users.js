// Admin: the people of this server. Add one; for each, in a dialog: role, access, a new
// password, their own quotas (empty fields follow the role, shown as placeholders), their API
// keys, and deleting them (with confirmation).

import { api } from "./api.js";
import { confirmDialog, openDialog } from "./dialogs.js";
import { el, say } from "./dom.js";
import { formatDate, formatNumber, t } from "./i18n.js";
import { KeysPanel, userKeys } from "./keys.js";
import { loginErrorText } from "./login.js";

const QUOTAS = [
  { field: "tokens_per_day", key: "admin_quota_tokens_per_day" },
  { field: "concurrent_requests", key: "admin_quota_concurrent_requests" },
  { field: "max_context", key: "admin_quota_max_context" },
  { field: "storage_mb", key: "admin_quota_storage_mb" },
];

function roleName(role) {
  return role === "admin" ? t("role_admin") : t("role_member");
}

function roleSelect(id, value = "member") {
  const select = el(
    "select",
    { id },
    el("option", { value: "member", text: t("role_member") }),
    el("option", { value: "admin", text: t("role_admin") }),
  );
  select.value = value;
  return select;
}

function limitText(value) {
  return value ? formatNumber(value) : t("admin_quota_no_limit");
}

export class UsersView {
  constructor(section, { showError }) {
    this.section = section;
    this.showError = showError;
    this.users = [];
    this.dialog = document.getElementById("user-dialog");
    this.render();
  }

  show() {
    this.refresh();
  }

  hide() {}

  render() {
    const name = el("input", { id: "new-user-name", type: "text", autocomplete: "off",
      autocapitalize: "none", spellcheck: "false", maxlength: "64", required: true });
    const password = el("input", { id: "new-user-password", type: "password",
      autocomplete: "new-password", maxlength: "1024", required: true,
      "aria-describedby": "new-user-password-note" });
    const role = roleSelect("new-user-role");
    this.createError = el("div", { className: "inline-error", role: "alert" });
    this.status = el("p", { className: "status", role: "status" });
    const form = el(
      "form",
      { className: "admin-form", novalidate: true },
      el(
        "fieldset",
        { className: "form-grid" },
        el("legend", { text: t("admin_users_add") }),
        el("div", { className: "field" },
          el("label", { for: "new-user-name", text: t("auth_label_name") }), name),
        el("div", { className: "field" },
          el("label", { for: "new-user-role", text: t("admin_label_role") }), role),
        el("div", { className: "field" },
          el("label", { for: "new-user-password", text: t("auth_label_password") }), password,
          el("p", { id: "new-user-password-note", className: "note",
            text: t("auth_password_note", { min: formatNumber(8) }) })),
        el("div", { className: "field form-submit" },
          el("button", { type: "submit", className: "button primary", text: t("admin_users_action_add") })),
      ),
      this.createError,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      this.createError.replaceChildren();
      try {
        const user = await api("POST", "/admin/api/users", {
          name: name.value.trim(), role: role.value, password: password.value,
        });
        name.value = "";
        password.value = "";
        say(this.status, t("admin_users_added", { name: user.name }));
        await this.refresh();
      } catch (err) {
        this.createError.replaceChildren(el("p", { text: loginErrorText(err, "admin") }));
      }
    });

    this.body = el("tbody");
    const columns = [
      { key: "auth_label_name" }, { key: "admin_label_role" }, { key: "admin_col_status" },
      { key: "admin_quota_tokens_per_day", number: true }, { key: "admin_col_created" },
    ];
    this.section.replaceChildren(
      el("h1", { id: "users-title", tabindex: "-1", text: t("admin_users_title") }),
      el("p", { className: "note", text: t("admin_users_intro") }),
      form,
      this.status,
      el(
        "div",
        { className: "table-wrap", tabindex: "0" },
        el(
          "table",
          { className: "data-table", id: "users-table" },
          el("caption", { text: t("admin_users_caption") }),
          el("thead", {}, el("tr", {},
            ...columns.map((c) => el("th", { scope: "col", className: c.number ? "number" : null, text: t(c.key) })),
            el("th", { scope: "col" }, el("span", { className: "visually-hidden", text: t("keys_col_actions") })))),
          this.body,
        ),
      ),
    );
    this.section.setAttribute("aria-labelledby", "users-title");
    this.renderRows();
  }

  async refresh() {
    try {
      const listing = await api("GET", "/admin/api/users");
      this.users = listing.data;
      this.roleQuotas = listing.role_quotas || {};
      this.renderRows();
    } catch (err) {
      this.showError(err);
    }
  }

  renderRows() {
    this.body.replaceChildren(
      ...this.users.map((user) => {
        const manage = el("button", {
          type: "button", className: "button",
          "aria-label": t("admin_users_manage_named", { name: user.name }),
          text: t("admin_users_manage"),
        });
        manage.addEventListener("click", () => this.open(user));
        return el(
          "tr",
          { className: user.disabled ? "revoked" : null },
          el("th", { scope: "row", text: user.name }),
          el("td", { text: roleName(user.role) }),
          el("td", { text: user.disabled ? t("admin_status_disabled") : t("admin_status_active") }),
          el("td", { className: "number", text: limitText(user.effective_quota.tokens_per_day) }),
          el("td", { text: formatDate(user.created_at) }),
          el("td", {}, manage),
        );
      }),
    );
  }

  /** The role's own limit for a quota: what a user of that role without an override has. */
  roleDefault(role, field, fallbackUser) {
    const declared = this.roleQuotas?.[role];
    if (declared) return declared[field];
    const plain = this.users.find((u) => u.role === role && u.quota[field] === null);
    if (plain) return plain.effective_quota[field];
    if (fallbackUser.role === role && fallbackUser.quota[field] === null) {
      return fallbackUser.effective_quota[field];
    }
    return null;
  }

  open(user) {
    const dialog = this.dialog;
    const role = roleSelect("user-role", user.role);
    const disabled = el("input", { id: "user-disabled", type: "checkbox",
      "aria-describedby": "user-disabled-note" });
    disabled.checked = user.disabled;
    const password = el("input", { id: "user-password", type: "password",
      autocomplete: "new-password", maxlength: "1024", "aria-describedby": "user-password-note" });
    const quotaInputs = {};
    const placeholders = () => {
      for (const { field } of QUOTAS) {
        const value = this.roleDefault(role.value, field, user);
        quotaInputs[field].placeholder = value === null
          ? t("admin_quota_role_default")
          : t("admin_quota_role_value", { value: limitText(value) });
      }
    };
    const quotaFields = QUOTAS.map(({ field, key }) => {
      const input = el("input", { id: `quota-${field}`, type: "number", inputmode: "numeric",
        min: "0", step: "1", "aria-describedby": "quota-note" });
      input.value = user.quota[field] ?? "";
      quotaInputs[field] = input;
      return el("div", { className: "field" }, el("label", { for: `quota-${field}`, text: t(key) }), input);
    });
    placeholders();
    role.addEventListener("change", placeholders);
    const error = el("div", { className: "inline-error", role: "alert" });
    const status = el("p", { className: "status", role: "status" });
    const form = el(
      "form",
      { novalidate: true },
      el("div", { className: "field" }, el("label", { for: "user-role", text: t("admin_label_role") }), role),
      el("div", { className: "check-field" }, disabled,
        el("label", { for: "user-disabled", text: t("admin_label_disabled") })),
      el("p", { id: "user-disabled-note", className: "note", text: t("admin_disabled_note") }),
      el("div", { className: "field" },
        el("label", { for: "user-password", text: t("admin_label_new_password") }), password,
        el("p", { id: "user-password-note", className: "note", text: t("admin_new_password_note") })),
      el(
        "fieldset",
        { className: "settings-grid" },
        el("legend", { text: t("admin_quotas_legend") }),
        el("p", { id: "quota-note", className: "note wide", text: t("admin_quota_note") }),
        ...quotaFields,
      ),
      error,
      el("div", { className: "dialog-actions" },
        el("button", { type: "submit", className: "button primary", text: t("action_save") })),
      status,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.replaceChildren();
      const quota = {};
      for (const { field } of QUOTAS) {
        const raw = quotaInputs[field].value.trim();
        const value = raw === "" ? null : Number(raw);
        if (value !== null && (!Number.isInteger(value) || value < 0)) {
          error.replaceChildren(el("p", { text: t("admin_quota_invalid") }));
          quotaInputs[field].focus();
          return;
        }
        quota[field] = value;
      }
      const patch = { role: role.value, disabled: disabled.checked, quota };
      if (password.value) patch.password = password.value;
      try {
        const updated = await api("PATCH", `/admin/api/users/${encodeURIComponent(user.id)}`, patch);
        password.value = "";
        Object.assign(user, updated);
        say(status, t("admin_user_saved", { name: user.name }));
        await this.refresh();
      } catch (err) {
        error.replaceChildren(el("p", { text: loginErrorText(err, "admin") }));
      }
    });

    const remove = el("button", { type: "button", className: "button danger-fill",
      text: t("admin_user_delete") });
    remove.addEventListener("click", async () => {
      const ok = await confirmDialog({
        title: t("admin_user_delete_title"),
        message: t("admin_user_delete_message", { name: user.name }),
        confirmLabel: t("admin_user_delete"),
      });
      if (!ok) return;
      try {
        await api("DELETE", `/admin/api/users/${encodeURIComponent(user.id)}`);
        dialog.close();
        say(this.status, t("admin_user_deleted", { name: user.name }));
        await this.refresh();
      } catch (err) {
        error.replaceChildren(el("p", { text: loginErrorText(err, "admin") }));
      }
    });

    const close = el("button", { type: "button", className: "icon-button",
      "aria-label": t("action_close"), title: t("action_close") });
    close.innerHTML = '<svg aria-hidden="true" focusable="false" viewBox="0 0 24 24"><path d="M6 6l12 12M18 6L6 18"/></svg>';
    close.addEventListener("click", () => dialog.close());
    const keysRoot = el("div", { className: "keys-panel" });
    dialog.replaceChildren(
      el("div", { className: "dialog-head" },
        el("h2", { id: "user-dialog-title", text: t("admin_user_title", { name: user.name }) }), close),
      form,
      el("section", { "aria-labelledby": "user-keys-heading" },
        el("h3", { id: "user-keys-heading", text: t("admin_user_keys") }),
        keysRoot),
      el("section", { className: "danger-zone", "aria-labelledby": "user-delete-heading" },
        el("h3", { id: "user-delete-heading", text: t("admin_user_delete") }),
        el("p", { className: "note", text: t("admin_user_delete_note") }),
        remove),
    );
    const keys = new KeysPanel(keysRoot, { prefix: "user-key", endpoints: userKeys(user.id), headingLevel: "h4" });
    keys.refresh();
    openDialog(dialog, role);
  }
}
