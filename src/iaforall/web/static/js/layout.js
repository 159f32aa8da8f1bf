// The parts of the layout that move: the sidebar (behind a toggle on narrow screens) and the
// conversation's actions menu (a disclosure: a button that shows and hides a list).

const $ = (id) => document.getElementById(id);
const narrow = window.matchMedia("(max-width: 52rem)");

export function setUpLayout() {
  const toggle = $("sidebar-toggle");
  const menuButton = $("conversation-menu-button");
  const menu = $("conversation-menu");

  const setSidebar = (open) => {
    document.body.classList.toggle("sidebar-open", open);
    toggle.setAttribute("aria-expanded", String(open));
  };
  const setMenu = (open) => {
    menu.hidden = !open;
    menuButton.setAttribute("aria-expanded", String(open));
  };

  toggle.addEventListener("click", () => {
    const open = !document.body.classList.contains("sidebar-open");
    setSidebar(open);
    if (open) $("new-chat").focus();
  });
  narrow.addEventListener("change", () => setSidebar(false));
  menuButton.addEventListener("click", () => setMenu(menu.hidden));
  // Leaving the menu (click elsewhere, Tab out) closes it.
  document.addEventListener("click", (event) => {
    if (!menu.hidden && !menu.contains(event.target) && event.target !== menuButton) {
      if (!menuButton.contains(event.target)) setMenu(false);
    }
  });
  menu.addEventListener("focusout", (event) => {
    if (!menu.contains(event.relatedTarget) && event.relatedTarget !== menuButton) setMenu(false);
  });
  for (const link of menu.querySelectorAll("a")) link.addEventListener("click", () => setMenu(false));

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
    closeMenu() {
      if (menu.hidden) return false;
      setMenu(false);
      menuButton.focus();
      return true;
    },
    /** Go to the conversation list: open the sidebar if it is hidden, then its search box. */
    showConversations() {
      if (narrow.matches) setSidebar(true);
      $("search").focus();
    },
  };
}
