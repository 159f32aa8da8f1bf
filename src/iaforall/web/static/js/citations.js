// The sources of an answer: a list of buttons under it, each opening the cited passage (shown as
// text, never as HTML) with a link to the original file, at the cited page for a PDF.

import { openDialog } from "./dialogs.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";
import { fileUrl } from "./knowledge.js";

const $ = (id) => document.getElementById(id);
let counter = 0;

/** Where the passage is: the server says "page 3" in English, the rest (headings…) as written. */
function place(citation) {
  const page = /^page (\d+)$/.exec(citation.location || "");
  return page ? t("citation_page", { page: page[1] }) : citation.location || "";
}

export function citationLabel(citation) {
  const where = place(citation);
  return where
    ? t("citation_label", { number: citation.number, document: citation.document, location: where })
    : t("citation_label_short", { number: citation.number, document: citation.document });
}

/** "Sources" and one button per cited passage. */
export function sourcesList(citations) {
  const id = `sources-${++counter}`;
  const list = el("ul", { className: "msg-sources-list", "aria-labelledby": id });
  for (const citation of citations) {
    const button = el("button", { type: "button", className: "msg-source", text: citationLabel(citation) });
    button.addEventListener("click", () => showCitation(citation));
    list.append(el("li", {}, button));
  }
  return el(
    "div",
    { className: "msg-sources" },
    el("p", { className: "msg-sources-title", id, text: t("sources_title") }),
    list,
  );
}

export function setUpCitationDialog() {
  const dialog = $("citation-dialog");
  $("citation-close").addEventListener("click", () => dialog.close());
}

export function showCitation(citation) {
  const where = place(citation);
  $("citation-heading").textContent = t("citation_title", {
    number: citation.number, document: citation.document,
  });
  $("citation-where").textContent = where;
  $("citation-where").hidden = !where;
  $("citation-text").textContent = citation.text || citation.quote || "";
  $("citation-ocr").hidden = !citation.ocr;
  const link = $("citation-open");
  link.href = fileUrl(citation.kb_id, citation.document_id, citation.page);
  link.replaceChildren(
    t("citation_open"),
    el("span", { className: "visually-hidden", text: ` ${t("opens_new_tab")}` }),
  );
  openDialog($("citation-dialog"), $("citation-text"));
}
