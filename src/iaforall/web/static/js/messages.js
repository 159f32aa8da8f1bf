// Drawing the messages. While an answer streams it is re-rendered at most once per frame,
// and the list is not a live region: the answer is announced once, when it ends.

import { sourcesList } from "./citations.js";
import { renderMarkdown } from "./markdown.js";
import { explain } from "./api.js";
import { currentLanguage, phrase, t, tCount } from "./i18n.js";

const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

let counter = 0;

function shell(role, model) {
  const article = el("article", `msg msg-${role}`);
  const heading = el("h3", "msg-author");
  heading.id = `msg-heading-${++counter}`;
  heading.textContent = t((AUTHORS[role] || AUTHORS.assistant).key);
  article.setAttribute("aria-labelledby", heading.id);
  article.append(heading);
  if (role !== "user" && model) heading.append(el("span", "msg-model", model));
  return article;
}

// Who wrote each kind of message: "picture" is one drawn by the image model (/image).
const AUTHORS = {
  user: { key: "author_you" },
  assistant: { key: "author_assistant" },
  picture: { key: "author_picture" },
};

/** A stored image of the conversation, as the server serves it to its owner. */
function imageUrl(conversationId, image) {
  return `/web/api/conversations/${encodeURIComponent(conversationId)}/images/${encodeURIComponent(image.id)}`;
}

function actionButton(key, handler) {
  const button = el("button", "msg-action", t(key));
  button.type = "button";
  button.addEventListener("click", handler);
  return button;
}

/** host: { onEdit(message), onRegenerate(), onReadAloud(message, button), onDrawAgain(prompt),
 *          readingAloud(message, button) -> whether it is being read (the button says stop),
 *          readAloudOff() -> why reading aloud cannot work here, or null } */
export class MessageView {
  constructor(container, host) {
    this.container = container;
    this.host = host;
  }

  /** Everything, from the stored conversation (after loading, and after each answer). */
  render(conversation, { actions = true } = {}) {
    this.conversationId = conversation.id;
    const messages = conversation.messages || [];
    if (!messages.length) {
      this.container.replaceChildren(this.emptyState());
      return;
    }
    const lastUser = messages.findLastIndex((m) => m.role === "user");
    const last = messages.length - 1;
    this.container.replaceChildren(
      ...messages.map((message, index) => {
        const node = this.message(message);
        const bar = el("div", "msg-actions");
        if (actions && index === lastUser) {
          bar.append(actionButton("action_edit", () => this.host.onEdit(message)));
        }
        if (actions && message.role === "assistant" && message.content.trim()) {
          const read = actionButton("action_read_aloud", () => this.host.onReadAloud(message, read));
          read.classList.add("msg-read");
          if (this.host.readingAloud?.(message, read)) read.textContent = t("action_stop_reading");
          const off = this.host.readAloudOff?.();
          if (off) {
            read.disabled = true;
            read.title = off;
          }
          bar.append(read);
        }
        if (actions && index === last && message.role === "assistant") {
          bar.append(actionButton("action_regenerate", () => this.host.onRegenerate()));
        }
        if (bar.childElementCount) node.append(bar);
        return node;
      }),
    );
  }

  /** Everything again in the current language. While an answer is written (`settled`: the
   * messages above its exchange), its question and answer stay as they are, relabelled. */
  relabel(conversation, settled) {
    const flying = [...this.container.querySelectorAll(".msg-in-flight")];
    if (!settled || !flying.length) {
      this.render(conversation);
      return;
    }
    this.render({ ...conversation, messages: settled }, { actions: false });
    this.container.querySelector(".empty-state")?.remove();
    for (const node of flying) {
      const author = node.querySelector(".msg-author").firstChild;
      author.nodeValue = node.classList.contains("msg-user") ? t("author_you") : t("author_assistant");
      this.container.append(node);
    }
  }

  emptyState() {
    const box = el("div", "empty-state");
    box.append(el("p", "empty-title", t("empty_title")), el("p", "empty-text", t("empty_text")));
    return box;
  }

  message(message) {
    const node = shell(message.role, message.model);
    node.dataset.id = message.id || "";
    node.dataset.status = message.status || "complete";
    if (message.role === "picture") {
      node.append(this.picture(message));
      return node;
    }
    if (message.role === "user") {
      const images = this.images(message);
      if (images) node.append(images);
      if (message.content || !images) node.append(el("div", "msg-body msg-text", message.content));
      return node;
    }
    const body = el("div", "msg-body markdown");
    body.append(renderMarkdown(message.content));
    node.append(body);
    // The answer's text is left as written ("[1]" included); its sources are listed under it.
    if (message.citations?.length) node.append(sourcesList(message.citations));
    const note = statusNote(message);
    if (note) node.append(note);
    if (message.decisions?.length) node.append(rulesNote(message.decisions));
    if (message.usage?.completion_tokens) {
      node.append(el("p", "msg-usage", tCount("tokens", message.usage.completion_tokens)));
    }
    return node;
  }

  /** A picture drawn for the conversation: the prompt is its alternative text and caption, with
   * a Download link and "Another one" (the same prompt, a new seed). */
  picture(message) {
    const figure = el("figure", "drawn");
    const caption = el("figcaption");
    caption.append(el("span", "", message.content));
    const [image] = message.images || [];
    if (image) {
      const src = imageUrl(this.conversationId, image);
      const picture = el("img");
      picture.src = src;
      picture.alt = message.content;
      figure.append(picture);
      const download = el("a", "button subtle", t("draw_download"));
      download.href = src;
      download.download = image.name;
      caption.append(download);
    }
    if (this.host.onDrawAgain) {
      caption.append(actionButton("draw_again", () => this.host.onDrawAgain(message.content)));
      caption.lastChild.className = "button subtle";
    }
    figure.append(caption);
    return figure;
  }

  /** A user message's images: stored ones from the server, or the previews of a pending one;
   * each opens full size in a new tab. */
  images(message) {
    const stored = (message.images || []).map((image) => ({
      name: image.name,
      src: imageUrl(this.conversationId, image),
    }));
    const all = [...stored, ...(message.previews || [])];
    if (!all.length) return null;
    const box = el("div", "msg-images");
    for (const { src, name } of all) {
      const link = el("a", "msg-image");
      link.href = src;
      link.target = "_blank";
      link.rel = "noopener";
      const image = el("img");
      image.src = src;
      image.alt = t("image_alt", { name });
      image.loading = "lazy";
      link.append(image);
      box.append(link);
    }
    return box;
  }

  appendUser(content, previews = []) {
    this.container.querySelector(".empty-state")?.remove();
    const node = this.message({ role: "user", content, status: "pending", previews });
    node.classList.add("msg-in-flight");
    this.container.append(node);
    return node;
  }

  /** A streaming answer: status text until the first token, then Markdown, once per frame. */
  appendAssistant(model) {
    this.container.querySelector(".empty-state")?.remove();
    for (const bar of this.container.querySelectorAll(".msg-actions")) bar.remove();
    const node = shell("assistant", model);
    node.classList.add("msg-in-flight");
    node.dataset.status = "streaming";
    node.setAttribute("aria-busy", "true");
    const body = el("div", "msg-body markdown");
    const status = el("p", "msg-waiting", "");
    node.append(status, body);
    this.container.append(node);
    this.scrollToEnd(true);
    return new StreamingAnswer(node, body, status, this);
  }

  removeLast(count) {
    const nodes = this.container.querySelectorAll(".msg");
    for (const node of [...nodes].slice(-count)) node.remove();
  }

  nearBottom() {
    const c = this.container;
    return c.scrollHeight - c.scrollTop - c.clientHeight < 80;
  }

  scrollToEnd(force = false) {
    if (force || this.nearBottom()) this.container.scrollTop = this.container.scrollHeight;
  }
}

/** Why an answer stopped, in the page's language: from its code when this page saw it fail;
 * a stored answer keeps only the server's English sentence, shown on English pages alone. */
function failureOf(message) {
  if (!message.error) return null;
  if (message.error_code) return phrase(explain({ code: message.error_code, message: message.error }));
  return currentLanguage() === "en" ? message.error : null;
}

function statusNote(message) {
  if (message.status === "stopped") return el("p", "msg-note msg-stopped", t("status_stopped"));
  if (message.status === "error") {
    const note = el("p", "msg-note msg-error", t("status_error"));
    const why = failureOf(message);
    if (why) note.append(" ", el("span", "msg-error-detail", why));
    return note;
  }
  return null;
}

const DECISION_ACTIONS = {
  warn: { key: "decision_action_warn" },
  log: { key: "decision_action_log" },
  block: { key: "decision_action_block" },
};

/** What the server's published rules decided about this exchange: never hidden. */
function rulesNote(decisions) {
  const note = el("div", "msg-note msg-rules");
  note.setAttribute("role", "note");
  const title = el("p", "msg-rules-title", t("rules_applied"));
  const list = el("ul", "msg-rules-list", "");
  for (const d of decisions) {
    const where = d.applies_to === "output" ? t("rules_on_answer") : t("rules_on_message");
    const item = el("li", "", "");
    item.append(
      el("strong", "", t("rules_decision", { rule: d.rule, action: t((DECISION_ACTIONS[d.action] || DECISION_ACTIONS.log).key) })),
      " ",
      `${where} ${d.description}`,
    );
    list.append(item);
  }
  const link = el("a", "", t("rules_see_all"));
  link.href = "/rules";
  note.append(title, list, link);
  return note;
}

class StreamingAnswer {
  constructor(node, body, status, view) {
    Object.assign(this, { node, body, status, view, text: "", frame: 0, paused: false });
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  /** Paused for someone else's turn (preemption): said under the text written so far, until
   * the answer goes on (its next token hides it again). */
  pause(text) {
    const follow = this.view.nearBottom();
    this.paused = true;
    this.body.after(this.status);
    this.setStatus(text);
    this.status.hidden = false;
    if (follow) this.view.scrollToEnd(true);
  }

  /** The passages the answer is given (from the `start` event), listed while it is written. */
  setCitations(citations) {
    this.citations = citations || [];
    this.node.querySelector(".msg-sources")?.remove();
    if (this.citations.length) this.body.after(sourcesList(this.citations));
  }

  append(delta) {
    this.text += delta;
    this.paused = false;
    if (this.frame) return;
    const follow = this.view.nearBottom();
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.status.hidden = !this.paused;
      this.body.replaceChildren(renderMarkdown(this.text));
      if (follow) this.view.scrollToEnd(true);
    });
  }

  /** The stream ended (any way): no more busy state. The caller re-renders from the data. */
  end() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.node.removeAttribute("aria-busy");
    for (const node of this.view.container.querySelectorAll(".msg-in-flight")) node.classList.remove("msg-in-flight");
  }
}

/** Copy buttons on code blocks: one listener for all, the result announced politely. */
export function setUpCopyButtons(container, announce) {
  container.addEventListener("click", async (event) => {
    const button = event.target.closest(".copy-code");
    if (!button) return;
    const code = button.closest(".code-block")?.querySelector("pre")?.textContent ?? "";
    const ok = await copyText(code);
    button.textContent = t(ok ? "copied" : "copy_failed");
    announce(t(ok ? "copied" : "copy_failed"));
    setTimeout(() => {
      button.textContent = t("copy_code");
    }, 2000);
  });
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // The clipboard API needs a secure context (a LAN address over http is not): old way.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}
