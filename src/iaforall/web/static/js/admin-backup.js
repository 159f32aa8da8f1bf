// Admin: backups. A link downloads one (the server streams it as it is written); the page says
// when the last one was made, and shows the cron line and the restore command.

import { api } from "./api.js";
import { el } from "./dom.js";
import { formatDate, formatNumber, t } from "./i18n.js";

const CRON = "0 3 * * * iaforall backup /var/backups/iaforall --keep 7";
const RESTORE = "iaforall restore /var/backups/iaforall/iaforall-backup-….tar";
const WATCH_EVERY = 2000; // after a download starts, until the server says it is complete
const WATCH_TIMES = 90;

export class BackupView {
  constructor(section, { showError }) {
    this.section = section;
    this.showError = showError;
    this.last = null;
    this.timer = 0;
    this.render();
  }

  show() {
    this.load();
  }

  hide() {
    clearTimeout(this.timer);
  }

  async load() {
    try {
      this.last = (await api("GET", "/admin/api/backup/last")).last;
      this.showError(null);
      this.fill();
    } catch (err) {
      this.showError(err);
    }
    return this.last;
  }

  /** A download ends in the browser, not here: ask until the server records it. */
  watch() {
    clearTimeout(this.timer);
    const before = this.last?.at;
    let times = 0;
    const look = async () => {
      const last = await this.load();
      if (last?.at !== before || ++times >= WATCH_TIMES) return;
      this.timer = setTimeout(look, WATCH_EVERY);
    };
    this.timer = setTimeout(look, WATCH_EVERY);
  }

  render() {
    this.status = el("p", { id: "backup-last", className: "status", role: "status" });
    const download = el("a", {
      id: "backup-download", className: "button primary", href: "/admin/api/backup",
      download: true, text: t("admin_backup_download"),
    });
    download.addEventListener("click", () => this.watch());
    this.section.replaceChildren(
      el("h1", { id: "backup-title", tabindex: "-1", text: t("admin_backup_title") }),
      el("p", { className: "note", text: t("admin_backup_intro") }),
      this.status,
      el("p", {}, download),
      el("p", { className: "note", text: t("admin_backup_download_note") }),
      el("h2", { text: t("admin_backup_regular_title") }),
      el("p", { text: t("admin_backup_regular") }),
      el("pre", {}, el("code", { id: "backup-cron", text: CRON })),
      el("h2", { text: t("admin_backup_restore_title") }),
      el("p", { text: t("admin_backup_restore") }),
      el("pre", {}, el("code", { text: RESTORE })),
    );
    this.section.setAttribute("aria-labelledby", "backup-title");
    this.fill();
  }

  fill() {
    if (!this.last) {
      this.status.textContent = t("admin_backup_never");
      return;
    }
    const how = this.last.how === "download"
      ? t("admin_backup_how_download")
      : t("admin_backup_how_command");
    this.status.textContent = t("admin_backup_last", {
      when: formatDate(this.last.at),
      size: formatNumber(this.last.size / 1e6, { maximumFractionDigits: 1 }),
      how,
    });
  }
}
