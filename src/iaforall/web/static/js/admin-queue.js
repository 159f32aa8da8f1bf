// Admin: the live queue, per model: what runs and what waits, and the CPU budget (which jobs
// hold how many threads of the cores the scheduler may fill), refreshed every 2 seconds while
// the view is shown. Screen readers hear the changes only when asked (aria-live off by default),
// and the updates can be paused (WCAG 2.2.2).

import { api } from "./api.js";
import { el } from "./dom.js";
import { currentLanguage, formatNumber, t } from "./i18n.js";

const EVERY = 2000;
const STATES = {
  stopped: { key: "admin_state_stopped" },
  loading: { key: "admin_state_loading" },
  ready: { key: "admin_state_ready" },
  crashed: { key: "admin_state_crashed" },
};

export class QueueView {
  constructor(section, { showError }) {
    this.section = section;
    this.showError = showError;
    this.models = [];
    this.places = [];
    this.queueLength = 0;
    this.cpu = null;
    this.updated = null;
    this.timer = 0;
    this.paused = false;
    this.announce = false;
    this.render();
  }

  show() {
    this.visible = true;
    this.tick();
  }

  hide() {
    this.visible = false;
    clearTimeout(this.timer);
  }

  async tick() {
    clearTimeout(this.timer);
    if (!this.visible) return;
    if (!this.paused && !document.hidden) {
      try {
        const answer = await api("GET", "/admin/api/queue");
        this.models = answer.models;
        this.places = answer.places || [];
        this.queueLength = answer.queue_length;
        this.cpu = answer.cpu_budget || null;
        this.updated = new Date();
        this.showError(null);
        this.fill();
      } catch (err) {
        this.showError(err);
      }
    }
    if (this.visible) this.timer = setTimeout(() => this.tick(), EVERY);
  }

  render() {
    const pause = el("button", { type: "button", id: "queue-pause", className: "button",
      "aria-pressed": String(this.paused), text: t("admin_queue_pause") });
    pause.addEventListener("click", () => {
      this.paused = !this.paused;
      pause.setAttribute("aria-pressed", String(this.paused));
      if (!this.paused) this.tick();
    });
    const announce = el("input", { type: "checkbox", id: "queue-announce" });
    announce.checked = this.announce;
    announce.addEventListener("change", () => {
      this.announce = announce.checked;
      this.live.setAttribute("aria-live", this.announce ? "polite" : "off");
    });
    this.body = el("tbody");
    this.placesBody = el("tbody");
    this.total = el("p", { className: "queue-total", id: "queue-total" });
    this.cpuLine = el("p", { className: "queue-total", id: "queue-cpu" });
    this.stamp = el("p", { className: "note", id: "queue-updated" });
    this.live = el(
      "div",
      { id: "queue-live", "aria-live": this.announce ? "polite" : "off", "aria-atomic": "false" },
      this.total,
      this.cpuLine,
      el("div", { className: "table-wrap", tabindex: "0" }, el(
        "table",
        { className: "data-table", id: "queue-table" },
        el("caption", { text: t("admin_queue_caption") }),
        el("thead", {}, el("tr", {},
          ...[
            { key: "admin_queue_model" }, { key: "admin_queue_state" },
            { key: "admin_queue_slots", number: true }, { key: "admin_queue_running", number: true },
            { key: "admin_queue_waiting", number: true },
          ].map((c) => el("th", { scope: "col", className: c.number ? "number" : null, text: t(c.key) })))),
        this.body,
      )),
      el("div", { className: "table-wrap", tabindex: "0" }, el(
        "table",
        { className: "data-table", id: "queue-places" },
        el("caption", { text: t("admin_queue_places_caption") }),
        el("thead", {}, el("tr", {},
          ...[
            { key: "admin_queue_person" }, { key: "admin_queue_model" },
            { key: "admin_queue_place" }, { key: "admin_queue_wait", number: true },
            { key: "admin_queue_threads", number: true },
          ].map((c) => el("th", { scope: "col", className: c.number ? "number" : null, text: t(c.key) })))),
        this.placesBody,
      )),
    );
    this.section.replaceChildren(
      el("h1", { id: "queue-title", tabindex: "-1", text: t("admin_queue_title") }),
      el("p", { className: "note", text: t("admin_queue_intro") }),
      el("div", { className: "toolbar" },
        pause,
        el("div", { className: "check-field" }, announce,
          el("label", { for: "queue-announce", text: t("admin_queue_announce") }))),
      this.live,
      this.stamp,
    );
    this.section.setAttribute("aria-labelledby", "queue-title");
    this.fill();
  }

  fill() {
    this.total.textContent = t("admin_queue_total", { count: formatNumber(this.queueLength) });
    this.stamp.textContent = this.updated
      ? t("admin_queue_updated", { time: this.updated.toLocaleTimeString(currentLanguage()) })
      : "";
    this.cpuLine.textContent = this.cpu && this.cpu.cores
      ? t("admin_queue_cpu", {
        used: formatNumber(this.cpu.in_use), cores: formatNumber(this.cpu.cores),
      })
      : "";
    this.fillPlaces();
    if (!this.models.length) {
      this.body.replaceChildren(el("tr", {}, el("td", { colspan: "5", text: t("admin_queue_none") })));
      return;
    }
    this.body.replaceChildren(...this.models.map((m) => el(
      "tr",
      {},
      el("th", { scope: "row", text: m.name }),
      el("td", { text: STATES[m.state] ? t(STATES[m.state].key) : m.state }),
      el("td", { className: "number", text: formatNumber(m.slots ?? 0) }),
      el("td", { className: "number", text: formatNumber(m.running ?? 0) }),
      el("td", { className: "number", text: formatNumber(m.queued ?? 0) }),
    )));
  }

  /** Each request, running first, then waiting in the order it will be served. */
  fillPlaces() {
    if (!this.places.length) {
      this.placesBody.replaceChildren(
        el("tr", {}, el("td", { colspan: "5", text: t("admin_queue_places_none") })));
      return;
    }
    this.placesBody.replaceChildren(...this.places.map((p) => el(
      "tr",
      {},
      el("th", { scope: "row", text: p.name }),
      el("td", { text: p.model }),
      el("td", { text: p.position === 0
        ? t("admin_queue_place_running")
        : t("admin_queue_place_waiting", { position: formatNumber(p.position) }) }),
      el("td", { className: "number", text: formatNumber(Math.round(p.wait_s)) }),
      el("td", { className: "number", text: p.position === 0 ? formatNumber(p.threads ?? 0) : "–" }),
    )));
  }
}
