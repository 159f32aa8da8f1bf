// The admin page (/admin): users and their keys and quotas, usage over time, the
// live queue, the audit log, the models (pulling one more) and backups. One view at a time,
// chosen by the address (#users, #usage…), so each view can be linked to and the browser's
// Back works.

import { loadSession } from "./account.js";
import { api, describeError, whenSignedOut } from "./api.js";
import { setUpDialogs } from "./dialogs.js";
import { el } from "./dom.js";
import {
  applyTranslations, cataloguesFound, currentLanguage, pickLanguage, setLanguage, storedLanguage, t,
} from "./i18n.js";
import { keepShell } from "./offline.js";
import { AuditView } from "./admin-audit.js";
import { ModelsView } from "./admin-models.js";
import { BackupView } from "./admin-backup.js";
import { QueueView } from "./admin-queue.js";
import { UsageView } from "./admin-usage.js";
import { UsersView } from "./admin-users.js";

const $ = (id) => document.getElementById(id);

// The page's own texts: element id -> catalogue key.
const TEXTS = [
  { id: "skip-link", key: "admin_skip" },
  { id: "app-name", key: "app_name" },
  { id: "back-link", key: "admin_back" },
  { id: "language-label", key: "label_language" },
  { id: "admin-nav-label", key: "admin_nav_label" },
  { id: "nav-users", key: "admin_users_title" },
  { id: "nav-usage", key: "admin_usage_title" },
  { id: "nav-queue", key: "admin_queue_title" },
  { id: "nav-audit", key: "admin_audit_title" },
  { id: "nav-models", key: "admin_models_title" },
  { id: "nav-backup", key: "admin_backup_title" },
];

const views = {};
let current = null;

export function showError(err) {
  const region = $("admin-error");
  if (!err) {
    region.replaceChildren();
    return;
  }
  if (err?.name === "AbortError") return;
  const { key, vars } = describeError(err);
  region.replaceChildren(el("p", { text: t(key, vars) }));
}

function translatePage() {
  for (const { id, key } of TEXTS) $(id).textContent = t(key);
  document.title = t("admin_document_title");
  applyTranslations(document);
}

async function loadLanguages() {
  let languages;
  try {
    languages = (await api("GET", "/web/api/languages")).data;
  } catch {
    languages = await cataloguesFound(); // offline: this device's copies
  }
  const select = $("language-select");
  select.replaceChildren(
    ...languages.map(({ code, name }) => el("option", { value: code, lang: code, text: name })),
  );
  await setLanguage(pickLanguage(languages, navigator.languages, storedLanguage()));
  select.value = currentLanguage();
  select.addEventListener("change", async () => {
    await setLanguage(select.value, { remember: true });
    translatePage();
    for (const view of Object.values(views)) view.render();
  });
}

function route({ focus = true } = {}) {
  const name = location.hash.slice(1) in views ? location.hash.slice(1) : "users";
  if (current && current !== views[name]) current.hide();
  for (const [key, view] of Object.entries(views)) {
    view.section.hidden = key !== name;
    const link = $(`nav-${key}`);
    if (key === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  current = views[name];
  showError(null);
  current.show();
  if (focus) current.section.querySelector("h1")?.focus();
}

/** Instead of the views: why this page cannot be used, and where to go. */
function refuse(text) {
  const main = $("admin-main");
  main.replaceChildren(
    el("h1", { text: t("admin_title") }),
    el("p", { className: "admin-refusal", text }),
    el("p", {}, el("a", { href: "/", className: "button primary", text: t("admin_back") })),
  );
}

async function start() {
  keepShell();
  setUpDialogs();
  await loadLanguages();
  translatePage();
  let session;
  try {
    session = await loadSession();
  } catch (err) {
    showError(err);
    document.body.dataset.ready = "true";
    return;
  }
  if (!session.user) refuse(t("admin_sign_in_first"));
  else if (session.user.role !== "admin") refuse(t("admin_only"));
  else {
    whenSignedOut(() => refuse(t("admin_sign_in_first")));
    $("admin-nav").hidden = false;
    views.users = new UsersView($("view-users"), { showError });
    views.usage = new UsageView($("view-usage"), { showError });
    views.queue = new QueueView($("view-queue"), { showError });
    views.audit = new AuditView($("view-audit"), { showError });
    views.models = new ModelsView($("view-models"), { showError });
    views.backup = new BackupView($("view-backup"), { showError });
    window.addEventListener("hashchange", () => route());
    route({ focus: false });
  }
  document.body.dataset.ready = "true";
}

start();
