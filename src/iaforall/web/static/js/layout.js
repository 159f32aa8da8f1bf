// The parts of the layout that move: the sidebar (behind a toggle on narrow screens) and the
// header's menus (the conversation's actions, the user menu): disclosures, a button that shows
// and hides a list.

const $ = (id) => document.getElementById(id);
const narrow = window.matchMedia("(max-width: 52rem)");

/** A button that shows and hides a menu; leaving the menu (click elsewhere, Tab out) closes it. */
function disclosure(button, menu) {
  const set = (open) => {
    menu.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
  };
  button.addEventListener("click", () => set(menu.hidden));
  document.addEventListener("click", (event) => {
    if (!menu.hidden && !menu.contains(event.target) && !button.contains(event.target)) set(false);
  });
  menu.addEventListener("focusout", (event) => {
    if (!menu.contains(event.relatedTarget) && event.relatedTarget !== button) set(false);
  });
  for (const link of menu.querySelectorAll("a")) link.addEventListener("click", () => set(false));
  return { button, menu, set };
}

export function setUpLayout() {
  const toggle = $("sidebar-toggle");
  const menus = [
    disclosure($("conversation-menu-button"), $("conversation-menu")),
    disclosure($("user-menu-button"), $("user-menu")),
  ];

  const setSidebar = (open) => {
    document.body.classList.toggle("sidebar-open", open);
    toggle.setAttribute("aria-expanded", String(open));
  };

  // Over the chat (narrow screens), leaving the sidebar closes it, as leaving a menu does: Tab
  // never reaches a control it covers. Not when focus goes to its toggle or to a dialog opened
  // from it (focus comes back), nor when the element that had it was redrawn (no target).
  const sidebar = $("sidebar");
  sidebar.addEventListener("focusout", (event) => {
    const to = event.relatedTarget;
    if (!narrow.matches || !to || sidebar.contains(to) || to === toggle || to.closest("dialog")) return;
    setSidebar(false);
  });

  toggle.addEventListener("click", () => {
    const open = !document.body.classList.contains("sidebar-open");
    setSidebar(open);
    if (open) $("new-chat").focus();
  });
  narrow.addEventListener("change", () => setSidebar(false));

  return {
    /** Close the sidebar overlay; true when it was open (so Escape did something). */
    closeSidebar({ focus = true } = {}) {
      const open = narrow.matches && document.body.classList.contains("sidebar-open");
      if (open) {
        setSidebar(false);
        if (focus) toggle.focus();
      }
      return open;
    },
    /** Close whichever menu is open (focus back on its button); true when one was. */
    closeMenu({ focus = true } = {}) {
      const open = menus.find((m) => !m.menu.hidden);
      if (!open) return false;
      open.set(false);
      if (focus) open.button.focus();
      return true;
    },
    /** Go to the conversation list: open the sidebar if it is hidden, then its search box. */
    showConversations() {
      if (narrow.matches) setSidebar(true);
      $("search").focus();
    },
  };
}
