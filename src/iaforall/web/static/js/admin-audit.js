// Admin: the audit log of the published rules' decisions, newest first, with filters (dates,
// person, rule, action), older pages on demand, and exports (CSV, JSON) of what is filtered.

import { api } from "./api.js";
import { el } from "./dom.js";
import { formatDate, t, tCount } from "./i18n.js";

const ACTIONS = [
  { value: "", key: "admin_audit_any" },
  { value: "block", key: "admin_audit_action_block" },
  { value: "warn", key: "admin_audit_action_warn" },
  { value: "log", key: "admin_audit_action_log" },
];

export class AuditView {
  constructor(section, { showError }) {
    this.section = section;
    this.showError = showError;
    this.entries = [];
    this.next = null;
    this.names = new Map();
    this.filters = { since: "", until: "", user: "", rule: "", action: "" };
    this.render();
  }

  show() {
    this.load();
  }

  hide() {}

  /** The query for the current filters (dates are whole UTC days, `until` included). */
  query() {
    const params = new URLSearchParams();
    const { since, until, user, rule, action } = this.filters;
    if (since) params.set("since", `${since}T00:00:00Z`);
    if (until) {
      const end = new Date(`${until}T00:00:00Z`);
      end.setUTCDate(end.getUTCDate() + 1);
      params.set("until", end.toISOString());
    }
    if (user) {
      const id = [...this.names].find(([, name]) => name.toLowerCase() === user.toLowerCase())?.[0];
      params.set("user", id || user);
    }
    if (rule) params.set("rule", rule);
    if (action) params.set("action", action);
    return params;
  }

  async load({ more = false } = {}) {
    try {
      if (!this.names.size) {
        const users = (await api("GET", "/admin/api/users")).data;
        this.names = new Map(users.map((u) => [u.id, u.name]));
      }
      const params = this.query();
      params.set("limit", "50");
      if (more && this.next) params.set("before", String(this.next));
      const answer = await api("GET", `/admin/api/audit?${params}`);
      this.entries = more ? [...this.entries, ...answer.data] : answer.data;
      this.next = answer.next_before;
      this.fill();
    } catch (err) {
      this.showError(err);
    }
  }

  render() {
    const input = ({ name, type, key }) => {
      const field = el("input", { id: `audit-${name}`, type, autocomplete: "off" });
      field.value = this.filters[name];
      this.fields[name] = field;
      return el("div", { className: "field" }, el("label", { for: `audit-${name}`, text: t(key) }), field);
    };
    this.fields = {};
    const action = el("select", { id: "audit-action" },
      ...ACTIONS.map((a) => el("option", { value: a.value, text: t(a.key) })));
    action.value = this.filters.action;
    this.fields.action = action;
    const form = el(
      "form",
      { className: "admin-form", novalidate: true },
      el(
        "fieldset",
        { className: "form-grid" },
        el("legend", { text: t("admin_audit_filters") }),
        input({ name: "since", type: "date", key: "admin_audit_since" }),
        input({ name: "until", type: "date", key: "admin_audit_until" }),
        input({ name: "user", type: "text", key: "admin_audit_user" }),
        input({ name: "rule", type: "text", key: "admin_audit_rule" }),
        el("div", { className: "field" }, el("label", { for: "audit-action", text: t("admin_audit_action") }), action),
        el("div", { className: "field form-submit" },
          el("button", { type: "submit", className: "button primary", text: t("admin_audit_apply") })),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      for (const [name, field] of Object.entries(this.fields)) this.filters[name] = field.value.trim();
      this.links();
      this.load();
    });
    this.csv = el("a", { id: "audit-export-csv", className: "button", download: true, text: t("admin_audit_export_csv") });
    this.json = el("a", { id: "audit-export-json", className: "button", download: true, text: t("admin_audit_export_json") });
    this.more = el("button", { type: "button", className: "button", id: "audit-more", text: t("admin_audit_more") });
    this.more.addEventListener("click", () => this.load({ more: true }));
    this.count = el("p", { className: "status", role: "status", id: "audit-count" });
    this.body = el("tbody");
    this.section.replaceChildren(
      el("h1", { id: "audit-title", tabindex: "-1", text: t("admin_audit_title") }),
      el("p", { className: "note", text: t("admin_audit_intro") }),
      form,
      el("div", { className: "toolbar" }, el("span", { className: "toolbar-label", text: t("admin_audit_export") }), this.csv, this.json),
      this.count,
      el("div", { className: "table-wrap", tabindex: "0" }, el(
        "table",
        { className: "data-table", id: "audit-table" },
        el("caption", { text: t("admin_audit_caption") }),
        el("thead", {}, el("tr", {}, ...[
          { key: "admin_audit_col_time" }, { key: "admin_audit_user" }, { key: "admin_audit_rule" },
          { key: "admin_audit_action" }, { key: "admin_audit_col_where" }, { key: "admin_audit_col_model" },
          { key: "admin_audit_col_excerpt" },
        ].map((c) => el("th", { scope: "col", text: t(c.key) })))),
        this.body,
      )),
      this.more,
    );
    this.section.setAttribute("aria-labelledby", "audit-title");
    this.fill();
  }

  /** The exports follow the filters as soon as they are applied. */
  links() {
    for (const [link, format] of [[this.csv, "csv"], [this.json, "json"]]) {
      const params = this.query();
      params.set("format", format);
      link.href = `/admin/api/audit/export?${params}`;
    }
  }

  fill() {
    this.links();
    this.more.hidden = !this.next;
    this.count.textContent = this.entries.length
      ? tCount("admin_audit_shown", this.entries.length)
      : t("admin_audit_none");
    this.body.replaceChildren(...this.entries.map((entry) => {
      const action = ACTIONS.find((a) => a.value === entry.action);
      return el(
        "tr",
        {},
        el("td", { text: formatDate(entry.at) }),
        el("td", { text: this.names.get(entry.user) || entry.user }),
        el("td", {}, el("span", { className: "rule-id", text: entry.rule_id }), el("br"),
          el("span", { className: "note", text: entry.description })),
        el("td", { className: `action-${entry.action}`, text: action ? t(action.key) : entry.action }),
        el("td", { text: `${entry.stage} · ${entry.where}` }),
        el("td", { text: entry.model || "" }),
        el("td", {}, el("code", { text: entry.excerpt })),
      );
    }));
  }
}
