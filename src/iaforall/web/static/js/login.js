// The sign-in screen and the first administrator's setup screen (the one-time link
// `#setup=TOKEN` printed by the server). Errors in plain language; the app behind it keeps
// what the person typed (it is only hidden), so a session that ends loses nothing.

import { api, ApiError, describeError, explain } from "./api.js";
import { currentLanguage, formatNumber, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const MIN_PASSWORD = 8;

/** "30 seconds", "5 minutes": a wait, in the reader's language. */
export function formatWait(seconds) {
  const minutes = Math.ceil(seconds / 60);
  const [value, unit] = seconds < 90 ? [Math.max(1, Math.ceil(seconds)), "second"] : [minutes, "minute"];
  try {
    return new Intl.NumberFormat(currentLanguage(), { style: "unit", unit, unitDisplay: "long" })
      .format(value);
  } catch {
    return formatNumber(value);
  }
}

/** The setup token of a `#setup=TOKEN` link, or null. */
export function setupToken(hash = location.hash) {
  const match = /^#setup=([^&]+)$/.exec(hash);
  return match ? decodeURIComponent(match[1]) : null;
}

export function loginErrorText(err, mode) {
  if (err instanceof ApiError && err.kind === "http") {
    if (err.status === 401) return t("auth_error_wrong");
    if (err.status === 429) {
      return err.retryAfter
        ? t("auth_error_throttled_wait", { wait: formatWait(err.retryAfter) })
        : t("auth_error_throttled");
    }
    if (err.status === 403 && mode === "setup") return t("auth_error_setup_invalid");
    if (err.status === 403) return t("auth_error_no_accounts");
    if (err.status === 409 || err.code === "conflict") return t("auth_error_name_taken");
    if (err.status === 400 && err.param === "password") {
      return t("auth_error_password_short", { min: formatNumber(MIN_PASSWORD) });
    }
    if (err.status === 400 && err.param === "name") return t("auth_error_name_invalid");
    if (err.status === 400) return t("auth_error_invalid", { detail: explain(err) });
  }
  const { key, vars } = describeError(err);
  return t(key, vars);
}

/**
 * Shows the screen and resolves with the session once signed in (or set up).
 * mode: "login" | "setup"; i18nKey: a notice shown above the form (an ended session).
 */
export function showAuthScreen({ mode = "login", token = null, i18nKey = null } = {}) {
  const screen = $("auth-screen");
  const form = $("auth-form");
  const setup = mode === "setup";
  const app = document.querySelector(".app");
  $("auth-heading").textContent = (setup ? t("auth_setup_title") : t("auth_login_title"));
  $("auth-intro").textContent = (setup ? t("auth_setup_intro") : t("auth_login_intro"));
  $("auth-notice").textContent = i18nKey ? t(i18nKey) : "";
  $("auth-notice").hidden = !i18nKey;
  $("auth-submit").textContent = (setup ? t("auth_action_setup") : t("auth_action_login"));
  $("auth-confirm-field").hidden = !setup;
  $("auth-password").autocomplete = setup ? "new-password" : "current-password";
  $("auth-password-note").hidden = !setup;
  $("auth-password-note").textContent = t("auth_password_note", { min: formatNumber(MIN_PASSWORD) });
  $("auth-error").replaceChildren();
  $("auth-password").value = "";
  $("auth-confirm").value = "";
  // A modal dialog (My API keys…) would sit above the screen: it closes, its content stays.
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  screen.dataset.mode = mode;
  screen.hidden = false;
  if (app) app.hidden = true;
  document.body.classList.add("signing-in");
  ($("auth-name").value ? $("auth-password") : $("auth-name")).focus();

  return new Promise((resolve) => {
    const fail = (text, field = null) => {
      const message = document.createElement("p");
      message.textContent = text;
      $("auth-error").replaceChildren(message);
      for (const input of ["auth-name", "auth-password", "auth-confirm"]) {
        $(input).removeAttribute("aria-invalid");
      }
      if (field) {
        $(field).setAttribute("aria-invalid", "true");
        $(field).focus();
      }
    };
    const submit = async (event) => {
      event.preventDefault();
      const name = $("auth-name").value.trim();
      const password = $("auth-password").value;
      if (!name) return fail(t("auth_error_name_missing"), "auth-name");
      if (!password) return fail(t("auth_error_password_missing"), "auth-password");
      if (setup && password.length < MIN_PASSWORD) {
        return fail(t("auth_error_password_short", { min: formatNumber(MIN_PASSWORD) }), "auth-password");
      }
      if (setup && password !== $("auth-confirm").value) {
        return fail(t("auth_error_mismatch"), "auth-confirm");
      }
      $("auth-submit").disabled = true;
      try {
        const session = setup
          ? await api("POST", "/web/api/setup", { token, name, password })
          : await api("POST", "/web/api/session", { name, password });
        form.removeEventListener("submit", submit);
        $("auth-password").value = "";
        $("auth-confirm").value = "";
        $("auth-error").replaceChildren();
        screen.hidden = true;
        if (app) app.hidden = false;
        document.body.classList.remove("signing-in");
        resolve(session);
      } catch (err) {
        const field = err?.status === 401 || err?.param === "password" ? "auth-password" : null;
        fail(loginErrorText(err, mode), field);
      } finally {
        $("auth-submit").disabled = false;
      }
      return undefined;
    };
    form.addEventListener("submit", submit);
  });
}
