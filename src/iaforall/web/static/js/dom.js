// A small element builder for the views drawn from data (keys, admin tables): text is always
// set as text, never parsed as HTML.

/** el("button", { type: "button", text: "…", "aria-label": "…" }, ...children) */
export function el(tag, props = {}, ...children) {
  const svg = tag.startsWith("svg:");
  const node = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "className") node.setAttribute("class", value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** Say something in a status region (cleared first so a repeat is still spoken). */
export function say(region, text) {
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}
