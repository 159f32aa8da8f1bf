// The sidebar: the server's list of conversations, search, import; and the calls that
// change one conversation (rename, delete, export links).

import { api } from "./api.js";
import { currentLanguage, formatDate, formatRelative, t } from "./i18n.js";

const BASE = "/web/api/conversations";
const $ = (id) => document.getElementById(id);

export const conversationPath = (id) => `${BASE}/${encodeURIComponent(id)}`;
// The language goes along: a Markdown export's headings are written in it.
export const exportUrl = (id, format) =>
  `${conversationPath(id)}/export?format=${format}&lang=${encodeURIComponent(currentLanguage())}`;

export const createConversation = (fields) => api("POST", BASE, fields);
export const getConversation = (id) => api("GET", conversationPath(id));
export const patchConversation = (id, fields) => api("PATCH", conversationPath(id), fields);
export const deleteConversation = (id) => api("DELETE", conversationPath(id));
export const importConversation = (doc) => api("POST", `${BASE}/import`, doc);

export function displayTitle(conversation) {
  return conversation?.title?.trim() || t("new_chat_title");
}

/** The list in the sidebar. `onError` shows failures; `currentId()` marks the open one. */
export class ConversationList {
  constructor({ currentId, onError }) {
    this.currentId = currentId;
    this.onError = onError;
    this.items = [];
    this.query = "";
    this.timer = null;
    this.generation = 0;
    $("search").addEventListener("input", (event) => {
      // Search as the user types, but not one request per keystroke.
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.search(event.target.value), 250);
    });
  }

  search(query) {
    this.query = query.trim();
    return this.refresh();
  }

  async refresh() {
    const generation = ++this.generation;
    const params = new URLSearchParams({ limit: "200" });
    if (this.query) params.set("q", this.query);
    try {
      const { data } = await api("GET", `${BASE}?${params}`);
      if (generation !== this.generation) return; // a newer search already answered
      this.items = data;
      this.render();
    } catch (err) {
      this.onError(err);
    }
  }

  render() {
    const list = $("conversation-list");
    list.replaceChildren(...this.items.map((c) => this.item(c)));
    const empty = $("conversation-empty");
    empty.hidden = this.items.length > 0;
    empty.textContent = this.query ? t("search_no_results") : t("conversations_empty");
    list.hidden = this.items.length === 0;
  }

  item(conversation) {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = `#/c/${encodeURIComponent(conversation.id)}`;
    link.className = "conversation-link";
    if (conversation.id === this.currentId()) link.setAttribute("aria-current", "page");
    const title = document.createElement("span");
    title.className = "conversation-title";
    title.textContent = displayTitle(conversation);
    const time = document.createElement("time");
    time.className = "conversation-date";
    time.dateTime = conversation.updated_at;
    time.title = formatDate(conversation.updated_at);
    time.textContent = formatRelative(conversation.updated_at);
    link.append(title, time);
    if (conversation.snippet) {
      const snippet = document.createElement("span");
      snippet.className = "conversation-snippet";
      snippet.textContent = conversation.snippet;
      link.append(snippet);
    }
    li.append(link);
    return li;
  }

  /** Re-mark the open conversation without a round trip. */
  markCurrent() {
    for (const link of document.querySelectorAll(".conversation-link")) {
      const open = link.getAttribute("href") === `#/c/${encodeURIComponent(this.currentId())}`;
      if (open) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }
}
