// Admin: usage per person over time. A stacked bar chart (one bar per UTC day, one colour per
// person, drawn here as SVG) with its numbers in a table below: the same data for everyone,
// whether they read the chart or the table.

import { api } from "./api.js";
import { el } from "./dom.js";
import { currentLanguage, formatNumber, t } from "./i18n.js";

const DAY = 24 * 3600 * 1000;
const SERIES = 6; // colours in app.css (.series-0 … .series-5), then patterns repeat them
const W = 720;
const H = 260;
const PAD = { top: 12, right: 12, bottom: 34, left: 64 };

function utcDays(count, now = new Date()) {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Array.from({ length: count }, (_, i) =>
    new Date(today - (count - 1 - i) * DAY).toISOString().slice(0, 10));
}

function formatDay(iso, style = "short") {
  const options = style === "long"
    ? { dateStyle: "long", timeZone: "UTC" }
    : { day: "numeric", month: "short", timeZone: "UTC" };
  return new Intl.DateTimeFormat(currentLanguage(), options).format(new Date(`${iso}T00:00:00Z`));
}

/** A round step for the value axis: 1, 2 or 5 times a power of ten. */
function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 5, 10].find((m) => m * power >= value);
  return step * power;
}

export class UsageView {
  constructor(section, { showError }) {
    this.section = section;
    this.showError = showError;
    this.rows = [];
    this.storage = [];
    this.days = 30;
    this.measure = "tokens";
    this.render();
  }

  show() {
    this.refresh();
  }

  hide() {}

  async refresh() {
    try {
      const answer = await api("GET", `/admin/api/usage?days=${this.days}`);
      this.rows = answer.data;
      this.storage = answer.storage || [];
      this.draw();
    } catch (err) {
      this.showError(err);
    }
  }

  render() {
    const period = el(
      "select",
      { id: "usage-days" },
      ...[7, 30, 90].map((n) => el("option", { value: n, text: t("admin_usage_days", { count: formatNumber(n) }) })),
    );
    period.value = String(this.days);
    period.addEventListener("change", () => {
      this.days = Number(period.value);
      this.refresh();
    });
    const measure = el(
      "select",
      { id: "usage-measure" },
      el("option", { value: "tokens", text: t("admin_usage_tokens") }),
      el("option", { value: "requests", text: t("admin_usage_requests") }),
    );
    measure.value = this.measure;
    measure.addEventListener("change", () => {
      this.measure = measure.value;
      this.draw();
    });
    this.figure = el("figure", { className: "chart", id: "usage-chart" });
    this.tableWrap = el("div", { className: "table-wrap", tabindex: "0" });
    this.storageWrap = el("div", { className: "table-wrap", tabindex: "0" });
    this.section.replaceChildren(
      el("h1", { id: "usage-title", tabindex: "-1", text: t("admin_usage_title") }),
      el("p", { className: "note", text: t("admin_usage_intro") }),
      el("div", { className: "toolbar" },
        el("div", { className: "field" }, el("label", { for: "usage-days", text: t("admin_usage_period") }), period),
        el("div", { className: "field" }, el("label", { for: "usage-measure", text: t("admin_usage_measure") }), measure)),
      this.figure,
      el("h2", { id: "usage-table-title", text: t("admin_usage_table_title") }),
      this.tableWrap,
      el("h2", { id: "storage-title", text: t("admin_storage_title") }),
      el("p", { className: "note", text: t("admin_storage_intro") }),
      this.storageWrap,
    );
    this.section.setAttribute("aria-labelledby", "usage-title");
    this.draw();
  }

  /** { days, users, values: Map(day -> Map(user -> number)), total, busiest } */
  summarise() {
    const days = utcDays(this.days);
    const values = new Map(days.map((d) => [d, new Map()]));
    const users = [...new Set(this.rows.map((r) => r.user))].sort((a, b) => a.localeCompare(b));
    for (const row of this.rows) {
      const day = values.get(row.day);
      if (!day) continue;
      const amount = this.measure === "tokens"
        ? row.prompt_tokens + row.completion_tokens
        : row.requests;
      day.set(row.user, (day.get(row.user) || 0) + amount);
    }
    let total = 0;
    let busiest = null;
    let most = 0;
    for (const [day, perUser] of values) {
      const sum = [...perUser.values()].reduce((a, b) => a + b, 0);
      total += sum;
      if (sum > most) [most, busiest] = [sum, day];
    }
    return { days, users, values, total, busiest, most };
  }

  draw() {
    const data = this.summarise();
    const unit = this.measure === "tokens" ? t("admin_usage_tokens") : t("admin_usage_requests");
    const caption = t("admin_usage_caption", { measure: unit, count: formatNumber(this.days) });
    const summary = data.total
      ? t("admin_usage_summary", {
        total: formatNumber(data.total), measure: unit.toLowerCase(),
        people: formatNumber(data.users.length), busiest: formatDay(data.busiest, "long"),
        most: formatNumber(data.most),
      })
      : t("admin_usage_empty");
    this.figure.replaceChildren(
      el("figcaption", { id: "usage-caption", text: caption }),
      this.chart(data, caption, summary),
      el("p", { id: "usage-summary", className: "note", text: summary }),
      this.legend(data.users),
    );
    this.tableWrap.replaceChildren(this.table(data, caption));
    this.storageWrap.replaceChildren(this.storageTable());
  }

  /** What each person keeps on the server (knowledge files, images) and what they may keep. */
  storageTable() {
    if (!this.storage.length) return el("p", { className: "note", text: t("admin_storage_empty") });
    const size = (bytes) => t("admin_storage_mb", {
      value: formatNumber(bytes / 1e6, { maximumFractionDigits: 1 }),
    });
    const rows = [...this.storage].sort((a, b) => a.user.localeCompare(b.user));
    return el(
      "table",
      { className: "data-table", id: "storage-table" },
      el("caption", { text: t("admin_storage_title") }),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col", text: t("admin_storage_person") }),
        el("th", { scope: "col", className: "number", text: t("admin_storage_knowledge") }),
        el("th", { scope: "col", className: "number", text: t("admin_storage_images") }),
        el("th", { scope: "col", className: "number", text: t("admin_storage_used") }),
        el("th", { scope: "col", className: "number", text: t("admin_storage_quota") }))),
      el("tbody", {}, ...rows.map((row) => el("tr", {},
        el("th", { scope: "row", text: row.user }),
        el("td", { className: "number", text: size(row.knowledge_bytes) }),
        el("td", { className: "number", text: size(row.image_bytes) }),
        el("td", { className: "number", text: size(row.used_bytes) }),
        el("td", { className: "number",
          text: row.quota_bytes === null ? t("admin_quota_no_limit") : size(row.quota_bytes) })))),
    );
  }

  chart({ days, users, values, most }, caption, summary) {
    const max = niceMax(most);
    const plotW = W - PAD.left - PAD.right;
    const plotH = H - PAD.top - PAD.bottom;
    const slot = plotW / days.length;
    const barW = Math.max(2, Math.min(28, slot * 0.7));
    const y = (v) => PAD.top + plotH - (v / max) * plotH;
    const svg = el("svg:svg", {
      viewBox: `0 0 ${W} ${H}`, role: "img", className: "chart-svg",
      "aria-labelledby": "usage-chart-title", "aria-describedby": "usage-summary",
      preserveAspectRatio: "xMidYMid meet",
    });
    svg.append(el("svg:title", { id: "usage-chart-title", text: caption }));
    for (const fraction of [0, 0.5, 1]) {
      const value = max * fraction;
      svg.append(
        el("svg:line", { x1: PAD.left, x2: W - PAD.right, y1: y(value), y2: y(value), className: "chart-grid" }),
        el("svg:text", { x: PAD.left - 8, y: y(value) + 4, "text-anchor": "end", className: "chart-label",
          text: formatNumber(value, { notation: "compact" }) }),
      );
    }
    const labelEvery = Math.ceil(days.length / 8);
    days.forEach((day, i) => {
      const x = PAD.left + i * slot + (slot - barW) / 2;
      let base = 0;
      users.forEach((user, u) => {
        const value = values.get(day).get(user) || 0;
        if (!value) return;
        const top = y(base + value);
        svg.append(el(
          "svg:rect",
          { x, y: top, width: barW, height: Math.max(1, y(base) - top), className: `series-${u % SERIES}` },
          el("svg:title", { text: `${user}, ${formatDay(day, "long")}: ${formatNumber(value)}` }),
        ));
        base += value;
      });
      if ((days.length - 1 - i) % labelEvery === 0) {
        svg.append(el("svg:text", { x: x + barW / 2, y: H - PAD.bottom + 18, "text-anchor": "middle",
          className: "chart-label", text: formatDay(day) }));
      }
    });
    svg.append(el("svg:line", { x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0), className: "chart-axis" }));
    return svg;
  }

  legend(users) {
    return el(
      "ul",
      { className: "chart-legend", "aria-label": t("admin_usage_legend") },
      ...users.map((user, u) => el("li", {},
        el("span", { className: `swatch series-${u % SERIES}`, "aria-hidden": "true" }),
        el("span", { text: user }))),
    );
  }

  table({ days, users, values }, caption) {
    const shown = days.filter((d) => values.get(d).size > 0).reverse();
    if (!shown.length) return el("p", { className: "note", text: t("admin_usage_empty") });
    return el(
      "table",
      { className: "data-table", id: "usage-table" },
      el("caption", { text: caption }),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col", text: t("admin_usage_day") }),
        ...users.map((user) => el("th", { scope: "col", className: "number", text: user })),
        el("th", { scope: "col", className: "number", text: t("admin_usage_total") }))),
      el("tbody", {}, ...shown.map((day) => {
        const perUser = values.get(day);
        const sum = [...perUser.values()].reduce((a, b) => a + b, 0);
        return el("tr", {},
          el("th", { scope: "row", text: formatDay(day, "long") }),
          ...users.map((user) => el("td", { className: "number", text: formatNumber(perUser.get(user) || 0) })),
          el("td", { className: "number", text: formatNumber(sum) }));
      })),
    );
  }
}
