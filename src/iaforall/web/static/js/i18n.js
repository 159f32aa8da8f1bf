// Translations and locale-aware formatting. Catalogues are flat JSON files in /static/i18n/;
// the server lists them at /web/api/languages, so a new language needs only a new file.

const STORAGE_KEY = "iaforall.lang";
const FALLBACK = "en";

let lang = FALLBACK;
let messages = {};
let fallback = {};

async function fetchCatalogue(code) {
  const response = await fetch(`/static/i18n/${encodeURIComponent(code)}.json`);
  if (!response.ok) throw new Error(`catalogue ${code}: HTTP ${response.status}`);
  return response.json();
}

/** The best available language: the remembered choice, then the browser's preferences. */
export function pickLanguage(available, preferred = navigator.languages || [], stored = null) {
  const codes = available.map((l) => l.code);
  if (stored && codes.includes(stored)) return stored;
  for (const wanted of preferred) {
    const lower = wanted.toLowerCase();
    const exact = codes.find((c) => c.toLowerCase() === lower);
    if (exact) return exact;
    const base = codes.find((c) => c.toLowerCase() === lower.split("-")[0]);
    if (base) return base;
  }
  return codes.includes(FALLBACK) ? FALLBACK : codes[0] || FALLBACK;
}

export function storedLanguage() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/** The catalogues found for English, the remembered choice and the browser's languages: what
 * to offer when the server's list cannot be read (offline, or not public). */
export async function cataloguesFound(preferred = navigator.languages || []) {
  const wanted = [FALLBACK, storedLanguage(), ...preferred.map((l) => l.split("-")[0])];
  const found = [];
  for (const code of new Set(wanted.filter(Boolean))) {
    try {
      const response = await fetch(`/static/i18n/${encodeURIComponent(code)}.json`);
      if (response.ok) found.push({ code, name: (await response.json())._meta?.name || code });
    } catch {
      // Neither the server nor this device's copy has it.
    }
  }
  return found.length ? found : [{ code: FALLBACK, name: "English" }];
}

/** Load a catalogue (English fills any gap) and apply it to the page. */
export async function setLanguage(code, { remember = false } = {}) {
  if (!Object.keys(fallback).length) fallback = await fetchCatalogue(FALLBACK);
  messages = code === FALLBACK ? fallback : await fetchCatalogue(code);
  lang = code;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, code);
    } catch {
      // Private mode without storage: the choice lasts for this page only.
    }
  }
  document.documentElement.lang = code;
  applyTranslations(document);
}

export function currentLanguage() {
  return lang;
}

/** The text for `key`, with `{name}` placeholders filled from `vars`; a value that is itself
 * a `{key, vars}` is translated too (a sentence inside a sentence, said in the same language). */
export function t(key, vars = {}) {
  const text = messages[key] ?? fallback[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? phrase(vars[name]) : whole));
}

/** A catalogue `{key, vars}` as text in the current language; any other value as it is. */
export function phrase(value) {
  return value && typeof value === "object" && "key" in value ? t(value.key, value.vars) : String(value);
}

/** Whether a catalogue (this language's, or English's) has `key`. */
export function has(key) {
  return key in messages || key in fallback;
}

/** Fill `data-i18n` (text) and `data-i18n-attr` ("attr:key,attr:key") under `root`. */
export function applyTranslations(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(",")) {
      const [attr, key] = pair.split(":").map((s) => s.trim());
      el.setAttribute(attr, t(key));
    }
  }
}

export function formatNumber(value, options = {}) {
  return new Intl.NumberFormat(lang, options).format(value);
}

export function formatDate(iso) {
  return new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(
    new Date(iso),
  );
}

const UNITS = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
];

/** "5 minutes ago", "hier", "now": the largest unit that fits. */
export function formatRelative(iso, now = Date.now()) {
  const seconds = (new Date(iso).getTime() - now) / 1000;
  const rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return rtf.format(Math.round(seconds / size), unit);
  }
  return rtf.format(0, "second");
}

/** A counted phrase: `key_one` / `key_other` chosen by the language's plural rules. */
export function tCount(key, count) {
  const form = new Intl.PluralRules(lang).select(count) === "one" ? "one" : "other";
  return t(`${key}_${form}`, { count: formatNumber(count) });
}
