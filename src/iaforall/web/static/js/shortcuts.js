// Keyboard shortcuts, all with a modifier (or Escape) so they never clash with typing,
// and the help dialog that lists them, built from the same table.

import { t } from "./i18n.js";
import { openDialog } from "./dialogs.js";

// keys: catalogue keys of the key names (so French shows "Maj", "Entrée", "Échap").
const SHORTCUTS = [
  { keys: ["key_enter"], action: "shortcut_send" },
  { keys: ["key_shift", "key_enter"], action: "shortcut_newline" },
  { keys: ["key_escape"], action: "shortcut_stop" },
  { keys: ["key_shift", "key_escape"], action: "shortcut_focus_input" },
  { keys: ["key_ctrl", "key_shift", "key_o"], action: "shortcut_new_chat" },
  { keys: ["key_ctrl", "key_shift", "key_s"], action: "shortcut_sidebar" },
  { keys: ["key_ctrl", "key_shift", "key_l"], action: "shortcut_dictate" },
  { keys: ["key_ctrl", "key_slash"], action: "shortcut_help" },
];

export function renderHelp() {
  const body = document.getElementById("shortcut-rows");
  body.replaceChildren(
    ...SHORTCUTS.map(({ keys, action }) => {
      const row = document.createElement("tr");
      const combo = document.createElement("td");
      keys.forEach((key, index) => {
        if (index) combo.append(" + ");
        const kbd = document.createElement("kbd");
        kbd.textContent = t(key);
        combo.append(kbd);
      });
      const what = document.createElement("td");
      what.textContent = t(action);
      row.append(combo, what);
      return row;
    }),
  );
}

export function openHelp() {
  openDialog(document.getElementById("help-dialog"), document.getElementById("help-close"));
}

/** actions: { stop(), streaming(), focusInput(), newChat(), toggleSidebar(), closeMenus(),
 *            dictate() } */
export function setUpShortcuts(actions) {
  document.getElementById("help-button").addEventListener("click", openHelp);
  document.getElementById("help-close").addEventListener("click", () => {
    document.getElementById("help-dialog").close();
  });
  document.addEventListener("keydown", (event) => {
    if (document.querySelector("dialog[open]")) return; // the dialog handles its own keys
    const ctrl = event.ctrlKey || event.metaKey;
    const key = event.key.toLowerCase();
    if (event.key === "Escape" && event.shiftKey) {
      event.preventDefault();
      actions.focusInput();
    } else if (event.key === "Escape" && !ctrl && !event.altKey) {
      if (actions.closeMenus()) return;
      if (actions.streaming()) {
        event.preventDefault();
        actions.stop();
      }
    } else if (ctrl && event.shiftKey && key === "o") {
      event.preventDefault();
      actions.newChat();
    } else if (ctrl && event.shiftKey && key === "s") {
      event.preventDefault();
      actions.toggleSidebar();
    } else if (ctrl && event.shiftKey && key === "l") {
      event.preventDefault();
      actions.dictate();
    } else if (ctrl && !event.shiftKey && (event.key === "/" || event.code === "Slash")) {
      event.preventDefault();
      openHelp();
    }
  });
}
