// Native <dialog> with explicit focus handling: focus goes into the dialog and comes back to
// whatever had it before, whichever way the dialog closes (button, Escape, form).

const returnTo = new WeakMap();

export function openDialog(dialog, focusTarget = null) {
  if (dialog.open) return;
  returnTo.set(dialog, document.activeElement);
  dialog.showModal();
  (focusTarget || dialog.querySelector("[autofocus], button, input, textarea, select"))?.focus();
}

function restoreFocus(event) {
  const dialog = event.target;
  const previous = returnTo.get(dialog);
  returnTo.delete(dialog);
  // "close" arrives a moment after the dialog shut: the browser may have put focus back
  // already, and a quick keyboard user may have moved on. Never take focus from them.
  const active = document.activeElement;
  if (active && active !== document.body && !dialog.contains(active)) return;
  if (previous && previous.isConnected && typeof previous.focus === "function") previous.focus();
  else document.getElementById("composer-input")?.focus();
}

export function setUpDialogs() {
  for (const dialog of document.querySelectorAll("dialog")) {
    dialog.addEventListener("close", restoreFocus);
    // A click on the backdrop (outside the dialog's box) closes it, as people expect.
    dialog.addEventListener("click", (event) => {
      if (event.target !== dialog) return;
      const box = dialog.getBoundingClientRect();
      const inside =
        event.clientX >= box.left && event.clientX <= box.right &&
        event.clientY >= box.top && event.clientY <= box.bottom;
      if (!inside) dialog.close();
    });
  }
}

/** A yes/no question in the confirm dialog; resolves true when confirmed. */
export function confirmDialog({ title, message, confirmLabel }) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-message").textContent = message;
  document.getElementById("confirm-ok").textContent = confirmLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    openDialog(dialog, document.getElementById("confirm-cancel"));
  });
}

/** Ask for a text (the rename dialog); resolves the new text, or null when cancelled. */
export function promptDialog({ value }) {
  const dialog = document.getElementById("rename-dialog");
  const input = document.getElementById("rename-input");
  input.value = value;
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue === "ok" ? input.value.trim() : null),
      { once: true },
    );
    dialog.returnValue = "";
    openDialog(dialog, input);
    input.select();
  });
}
