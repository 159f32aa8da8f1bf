// Who is signed in: the session (and its CSRF token), signing in, setting up the first
// administrator, signing out, and the user menu in the header (My API keys, Admin, Rules).

import { api, setCsrfToken, whenSignedOut } from "./api.js";
import { openDialog } from "./dialogs.js";
import { t } from "./i18n.js";
import { KeysPanel, ownKeys } from "./keys.js";
import { setupToken, showAuthScreen } from "./login.js";

const $ = (id) => document.getElementById(id);

let session = { auth: false, setup_required: false, user: null, csrf_token: null };

export function currentSession() {
  return session;
}

function adopt(next) {
  session = { ...session, ...next };
  setCsrfToken(session.csrf_token);
  return session;
}

export async function loadSession() {
  return adopt(await api("GET", "/web/api/session"));
}

function forgetSetupLink() {
  if (setupToken()) history.replaceState(null, "", location.pathname + location.search);
}

/**
 * Resolves once someone may use the app: at once without accounts or with a live session;
 * otherwise after the setup screen (a `#setup=` link while no admin exists) or the sign-in.
 */
export async function ensureSignedIn() {
  await loadSession();
  const token = setupToken();
  if (!session.auth) {
    forgetSetupLink();
    return session;
  }
  if (token && session.setup_required && !session.user) {
    const created = await showAuthScreen({ mode: "setup", token });
    forgetSetupLink();
    return adopt(created);
  }
  let i18nKey = null;
  if (token) i18nKey = "auth_setup_used"; // an old or already used link: just sign in
  forgetSetupLink();
  if (session.user) return session;
  return adopt(await showAuthScreen({ mode: "login", i18nKey }));
}

/**
 * A 401 later on (the session ended or was closed elsewhere): the sign-in screen over the app,
 * which keeps what was typed. `signedIn()` runs after; another person's sign-in reloads.
 */
export function watchSession({ signedIn }) {
  let asking = false;
  whenSignedOut(async () => {
    if (asking || !session.auth) return;
    asking = true;
    const before = session.user?.id;
    try {
      adopt(await showAuthScreen({ mode: "login", i18nKey: "auth_session_ended" }));
    } finally {
      asking = false;
    }
    if (before && session.user?.id !== before) location.reload();
    else signedIn();
  });
}

export async function signOut() {
  try {
    await api("DELETE", "/web/api/session");
  } finally {
    setCsrfToken(null);
    location.reload();
  }
}

/** Where the published rules are: the rules page when served, else the JSON. */
async function rulesHref() {
  for (const path of ["/rules", "/static/rules.html"]) {
    try {
      const response = await fetch(path, { method: "GET", headers: { Accept: "text/html" } });
      if (response.ok) return path;
    } catch {
      // Try the next one.
    }
  }
  return "/v1/policy";
}

/** The header's user menu and the "My API keys" dialog. */
export function setUpUserMenu(layout) {
  const { user, auth } = session;
  if (!user) return;
  $("user-menu-wrap").hidden = false;
  const render = () => {
    const name = auth ? user.name : t("account_local_name");
    $("user-menu-name").textContent = name;
    $("user-menu-button").setAttribute("aria-label", t("account_menu_label", { name }));
    $("user-menu-button").title = t("account_menu_label", { name });
    $("user-menu-who").textContent = auth
      ? t("account_signed_in_as", {
        name: user.name,
        role: user.role === "admin" ? t("role_admin") : t("role_member"),
      })
      : t("account_local_mode");
  };
  render();
  $("keys-item").hidden = !auth;
  $("signout-item").hidden = !auth;
  $("admin-item").hidden = user.role !== "admin";
  rulesHref().then((href) => {
    $("rules-link").href = href;
  });

  let panel = null;
  let stale = false; // drawn in another language while open: rebuilt when next opened
  $("keys-button").addEventListener("click", () => {
    layout.closeMenu({ focus: false });
    if (!panel || stale) {
      $("my-keys").replaceChildren();
      panel = new KeysPanel($("my-keys"), { prefix: "my-key", endpoints: ownKeys });
      stale = false;
    }
    panel.refresh();
    openDialog($("keys-dialog"), panel.nameInput);
  });
  $("keys-close").addEventListener("click", () => $("keys-dialog").close());
  $("signout-button").addEventListener("click", signOut);
  return {
    /** Texts again in a new language (the keys panel is rebuilt when next opened; an open
     * one is left whole: emptied, it would lose its list and a key shown once). */
    render() {
      render();
      if (panel && $("keys-dialog").open) stale = true;
      else if (panel) {
        panel = null;
        $("my-keys").replaceChildren();
      }
    },
  };
}
