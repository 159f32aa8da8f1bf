// The message box: Enter sends, Shift+Enter adds a line, the unsent text is kept per
// conversation in localStorage (a reload never loses it), and "edit" mode for the last message.

const $ = (id) => document.getElementById(id);
const DRAFT_PREFIX = "iaforall.draft.";

const draftKey = (id) => DRAFT_PREFIX + (id || "new");

function store(key, value) {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
  } catch {
    // No storage (private mode, quota): the draft lives only in the page.
  }
}

function load(key) {
  try {
    return localStorage.getItem(key) || "";
  } catch {
    return "";
  }
}

/** host: { submit(text, {editing}), conversationId(), hasAttachments() } */
export class Composer {
  constructor(host) {
    this.host = host;
    this.input = $("composer-input");
    this.editing = false;
    this.input.addEventListener("input", () => {
      this.autosize();
      store(draftKey(this.host.conversationId()), this.input.value);
    });
    this.input.addEventListener("keydown", (event) => {
      // isComposing: Enter that confirms an input-method composition must not send.
      if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
      if (event.ctrlKey || event.altKey || event.metaKey) return;
      event.preventDefault();
      this.submit();
    });
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    $("edit-cancel").addEventListener("click", () => this.cancelEdit());
  }

  submit() {
    const text = this.input.value;
    if (!text.trim() && !this.host.hasAttachments()) {
      this.input.focus();
      return;
    }
    this.host.submit(text, { editing: this.editing });
  }

  get value() {
    return this.input.value;
  }

  /** Put text in the box (and in the saved draft), e.g. after a failed send. */
  setValue(text, conversationId = this.host.conversationId()) {
    this.input.value = text;
    store(draftKey(conversationId), text);
    this.autosize();
  }

  /** Put dictated words where the caret is, spaced from what is around them. */
  insert(text) {
    const { value, selectionStart: start, selectionEnd: end } = this.input;
    const before = value.slice(0, start);
    const after = value.slice(end);
    const lead = before && !/\s$/.test(before) ? " " : "";
    const tail = after && !/^\s/.test(after) ? " " : "";
    this.setValue(before + lead + text + tail + after);
    const caret = (before + lead + text).length;
    this.input.setSelectionRange(caret, caret);
  }

  /** Empty the box on screen; the saved draft stays until the server has the message. */
  clearShown() {
    this.input.value = "";
    this.autosize();
  }

  forgetDraft(conversationId) {
    store(draftKey(conversationId), "");
  }

  /** Show the saved draft of a conversation (when it is opened). */
  restore(conversationId) {
    this.cancelEdit({ keepText: true });
    this.input.value = load(draftKey(conversationId));
    this.autosize();
  }

  /** The draft typed before the conversation existed now belongs to it. */
  adopt(conversationId) {
    const text = load(draftKey(null));
    store(draftKey(null), "");
    if (text) store(draftKey(conversationId), text);
  }

  startEdit(content) {
    this.editing = true;
    $("edit-banner").hidden = false;
    this.input.value = content;
    this.autosize();
    this.focus();
  }

  cancelEdit({ keepText = false } = {}) {
    if (!this.editing) return;
    this.editing = false;
    $("edit-banner").hidden = true;
    if (!keepText) this.setValue("");
    this.focus();
  }

  endEdit() {
    this.editing = false;
    $("edit-banner").hidden = true;
  }

  setStreaming(streaming) {
    const send = $("send-button");
    const stop = $("stop-button");
    const hadFocus = document.activeElement === send || document.activeElement === stop;
    send.hidden = streaming;
    stop.hidden = !streaming;
    if (hadFocus) (streaming ? stop : this.input).focus();
  }

  focus() {
    this.input.focus();
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight + 2, 240)}px`;
  }
}
