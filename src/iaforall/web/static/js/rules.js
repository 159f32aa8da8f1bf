// The rules page (/rules): the server's published content rules (GET /v1/policy), in the
// reader's language, with exactly what each one matches and does.

import { api, describeError } from "./api.js";
import { cataloguesFound, pickLanguage, setLanguage, storedLanguage, t, tCount } from "./i18n.js";
import { keepShell } from "./offline.js";

const $ = (id) => document.getElementById(id);

// The page's own texts: element id -> catalogue key.
const TEXTS = [
  { id: "skip-link", key: "rules_skip" },
  { id: "app-name", key: "app_name" },
  { id: "back-link", key: "rules_back" },
  { id: "language-label", key: "label_language" },
  { id: "rules-title", key: "rules_title" },
  { id: "rules-intro", key: "rules_intro" },
  { id: "rules-how-title", key: "rules_how_title" },
  { id: "rules-how-returned", key: "rules_how_returned" },
  { id: "rules-how-logged", key: "rules_how_logged" },
  { id: "rules-how-nothing-added", key: "rules_how_nothing_added" },
];
const ACTIONS = {
  block: { key: "rules_action_block" },
  warn: { key: "rules_action_warn" },
  log: { key: "rules_action_log" },
};
const STAGES = {
  input: { key: "rules_applies_input" },
  output: { key: "rules_applies_output" },
};

let languages = [];

/** The languages to offer: the server's list, or (when it is not public) the catalogues found
 * for English and the browser's languages. */
async function availableLanguages() {
  try {
    const response = await fetch("/web/api/languages");
    if (response.ok) return (await response.json()).data;
  } catch {
    // Offline or refused: probe the catalogues below.
  }
  return cataloguesFound();
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

function listOf(items, lang) {
  return new Intl.ListFormat(lang, { type: "conjunction" }).format(items);
}

function renderRule(rule, lang) {
  const action = ACTIONS[rule.action];
  const stages = rule.applies_to.map((s) => (STAGES[s] ? t(STAGES[s].key) : s));
  const match = rule.match.keywords
    ? [
        el("span", { textContent: t("rules_match_keywords") }),
        el(
          "ul",
          { className: "keywords" },
          rule.match.keywords.map((k) => el("li", {}, [el("code", { textContent: k })])),
        ),
      ]
    : [
        el("span", { textContent: `${t("rules_match_regex")} ` }),
        el("code", { textContent: rule.match.regex }),
      ];
  const row = (label, value) => [el("dt", { textContent: label }), el("dd", {}, value)];
  const idLine = [`${t("rules_id_label")} `, el("code", { textContent: rule.id })];
  return el("li", { className: "rule" }, [
    el("h2", { textContent: rule.description }),
    el("p", { className: "rule-id" }, idLine),
    el("dl", {}, [
      ...row(t("rules_action_label"), [
        el("span", {
          className: `action-${rule.action}`,
          textContent: action ? t(action.key) : rule.action,
        }),
      ]),
      ...row(t("rules_applies_label"), [listOf(stages, lang)]),
      ...row(t("rules_match_label"), match),
    ]),
  ]);
}

async function render(lang) {
  document.title = t("rules_document_title");
  for (const { id, key } of TEXTS) $(id).textContent = t(key);
  const status = $("rules-status");
  const list = $("rules-list");
  status.classList.remove("error");
  status.textContent = t("rules_loading");
  list.replaceChildren();
  try {
    const policy = await api("GET", `/v1/policy?lang=${encodeURIComponent(lang)}`);
    list.replaceChildren(...policy.rules.map((rule) => renderRule(rule, lang)));
    status.textContent = policy.rules.length
      ? tCount("rules_count", policy.rules.length)
      : t("rules_none");
  } catch (error) {
    status.classList.add("error");
    status.textContent = t("rules_error", { error: describeError(error) });
  }
}

async function start() {
  keepShell();
  languages = await availableLanguages();
  const select = $("language-select");
  const options = languages.map((l) => el("option", { value: l.code, textContent: l.name }));
  select.replaceChildren(...options);
  const lang = pickLanguage(languages, navigator.languages, storedLanguage());
  select.value = lang;
  await setLanguage(lang);
  await render(lang);
  select.addEventListener("change", async () => {
    await setLanguage(select.value, { remember: true });
    await render(select.value);
  });
  document.body.dataset.ready = "";
}

start();
