// Model output to safe HTML. Two layers, because the model's text is untrusted (a prompt
// injection can make it write anything): marked shows raw HTML as text, then DOMPurify keeps
// only harmless tags and http(s)/mailto links.

import { Marked } from "/static/vendor/marked/marked.esm.js";
import createDOMPurify from "/static/vendor/dompurify/purify.es.mjs";
import { t } from "./i18n.js";

const escapeHtml = (text) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

const marked = new Marked({
  gfm: true,
  breaks: true, // small models write single newlines meaning line breaks
  renderer: {
    // Raw HTML from the model is shown, never interpreted.
    html: ({ text }) => escapeHtml(text),
    // No remote images: loading one would tell a third party what is being read (and can leak
    // the conversation in its URL). The image becomes a plain link the user may choose to open.
    image: ({ href, text }) => `<a href="${escapeHtml(href || "")}">${escapeHtml(text || href || "")}</a>`,
  },
});

// A private DOMPurify instance, so these hooks cannot affect anyone else's use of it.
const purify = createDOMPurify(window);
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    if (node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    }
  }
});

const PURIFY_CONFIG = {
  ALLOWED_TAGS: [
    "a", "p", "br", "hr", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "input",
    "span", "sup", "sub",
  ],
  ALLOWED_ATTR: ["href", "title", "class", "start", "align", "type", "checked", "disabled"],
  // Links only to the web or e-mail. DOMPurify checks every attribute value against this
  // pattern, so the plain-word ones are declared safe.
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  ADD_URI_SAFE_ATTR: ["type", "start", "align", "checked", "disabled"],
  RETURN_DOM_FRAGMENT: true,
};

/** Markdown text -> a sanitized DocumentFragment, code blocks wrapped with a Copy button. */
export function renderMarkdown(text) {
  const fragment = purify.sanitize(marked.parse(text || ""), PURIFY_CONFIG);
  for (const input of fragment.querySelectorAll("input")) {
    // Task-list boxes only: anything else typed as <input> in Markdown is already text.
    if (input.getAttribute("type") !== "checkbox") input.remove();
    else input.setAttribute("disabled", "");
  }
  for (const pre of fragment.querySelectorAll("pre")) wrapCodeBlock(pre);
  return fragment;
}

function wrapCodeBlock(pre) {
  const wrapper = document.createElement("div");
  wrapper.className = "code-block";
  const bar = document.createElement("div");
  bar.className = "code-bar";
  const language = /language-([\w+#-]+)/.exec(pre.querySelector("code")?.className || "");
  const label = document.createElement("span");
  label.className = "code-lang";
  label.textContent = language ? language[1] : "";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy-code";
  button.textContent = t("copy_code");
  button.setAttribute("aria-label", t("copy_code_label"));
  bar.append(label, button);
  pre.tabIndex = 0; // a scrollable block must be reachable by keyboard
  pre.replaceWith(wrapper);
  wrapper.append(bar, pre);
}
