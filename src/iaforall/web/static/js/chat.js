// One reply at a time: send, regenerate, edit, stop. The server is the source of truth;
// before the answer starts nothing is stored, so a failure puts the typed text back.

import { api, streamReply } from "./api.js";
import { createConversation, deleteConversation } from "./conversations.js";
import { t } from "./i18n.js";
import { queueStatus } from "./queue.js";

/**
 * host: { conversation(), adoptConversation(conv), abandonConversation(conv),
 *         setMessages(messages, title?),
 *         model(), view, composer, attachments, announce(text), showError(err, retry),
 *         clearError(), refreshList(), setStreaming(bool) }
 */
export class Chat {
  constructor(host) {
    this.host = host;
    this.controller = null;
    this.poller = 0;
    this.line = null; // the last `queue` event of the reply being waited for
    this.shown = ""; // the status key the model watcher last showed
    this.said = 0; // the place in line last announced (a heartbeat with the same one is not)
    this.answer = null; // the answer being written, while it is
    this.settled = null; // the messages shown above it, meanwhile
    this.creating = null; // the conversation being created for a new chat, while it is
  }

  /** The status of the answer being written again, in a new language. */
  render() {
    if (!this.answer) return;
    const waiting = this.line && (this.line.paused || this.line.position > 0);
    if (this.line) this.answer.setStatus(waiting ? queueStatus(this.line) : t("status_thinking"));
    else this.answer.setStatus(t(this.shown || "status_waiting"));
  }

  get streaming() {
    return this.controller !== null;
  }

  stop() {
    this.controller?.abort();
  }

  /** Resolves when the answer has ended (any way), with the last message shown. `spoken`: the
   * answer will be read aloud (the conversation mode), so screen readers are not also told it. */
  send(text, { spoken = false } = {}) {
    return this.reply({ action: "send", content: text }, { spoken });
  }

  edit(text) {
    return this.reply({ action: "edit", content: text });
  }

  /** The attached images go with a send or an edit (an edit without any keeps the old ones). */
  withImages(request) {
    const { attachments } = this.host;
    if (request.action === "regenerate" || !attachments?.count) return request;
    return { ...request, images: attachments.payload() };
  }

  regenerate() {
    return this.reply({ action: "regenerate" });
  }

  /** The open conversation, created on the server first when it is a new chat (with what was
   * chosen for it meanwhile: model, system prompt, settings, knowledge). The one way a
   * conversation is created from the message box: for an answer, or for a picture drawn. */
  ensureConversation() {
    const { host } = this;
    const current = host.conversation();
    if (current.id) return Promise.resolve(current);
    // Asked twice before the first answer (two pictures drawn at once): one conversation.
    this.creating ??= createConversation({
      model: host.model(),
      system_prompt: current.system_prompt || "",
      remove_builtin_prompt: Boolean(current.remove_builtin_prompt),
      settings: current.settings,
      knowledge: current.knowledge || [],
      knowledge_files: current.knowledge_files || [],
    })
      .then((created) => {
        host.adoptConversation(created);
        return created;
      })
      .finally(() => {
        this.creating = null;
      });
    return this.creating;
  }

  async reply(asked, { spoken = false } = {}) {
    if (this.streaming) return null;
    const request = this.withImages(asked);
    const { host } = this;
    const { view, composer } = host;
    const model = host.model();
    const typed = request.content ?? null;
    const before = host.conversation();
    const kept = [...(before.messages || [])];
    const lastUser = kept.findLastIndex((m) => m.role === "user");
    // As the server does: a regenerate replaces everything after the last user message (the
    // answer, and any picture drawn since), an edit that message too.
    const cut = { send: kept.length, edit: lastUser, regenerate: lastUser + 1 }[request.action];
    this.settled = kept.slice(0, cut); // what stays above the exchange being written
    host.clearError();
    this.controller = new AbortController();
    host.setStreaming(true);

    // Show the exchange at once; the data follows what the server confirms.
    if (cut < kept.length) view.removeLast(kept.length - cut);
    if (typed !== null) {
      composer.clearShown();
      host.attachments?.hide();
      view.appendUser(typed, request.images ? host.attachments.previews() : []);
    }
    const answer = view.appendAssistant(model);
    this.answer = answer;
    this.said = 0;
    answer.setStatus(t("status_waiting"));
    this.watchModel(model, answer);

    let conversation = before;
    let start = null;
    const decisions = []; // the published rules' decisions, shown with the answer
    let stored = null;
    let failure = null;
    let stopped = false;
    try {
      conversation = await this.ensureConversation();
      const body = { ...request, ...(model && request.action === "send" ? { model } : {}) };
      await streamReply(conversation.id, body, {
        signal: this.controller.signal,
        onQueue: (line) => {
          // The server says where we stand: "3rd in line", then, at our turn, thinking; or,
          // once the answer has started, that it is paused for someone else's turn.
          const pausedNow = Boolean(line.paused) && !this.line?.paused;
          this.line = line;
          this.shown = "";
          if (line.paused) answer.pause(queueStatus(line));
          else answer.setStatus(line.position > 0 ? queueStatus(line) : t("status_thinking"));
          // Screen readers hear each new place in line once (the list itself is not live), and
          // a pause once when it starts (not each place it moves to meanwhile).
          if (line.paused ? pausedNow : line.position > 0 && line.position !== this.said) {
            host.announce(queueStatus(line));
          }
          this.said = line.position;
        },
        onStart: (payload) => {
          start = payload;
          answer.setCitations(payload.citations);
          decisions.push(...(payload.decisions || []));
          this.unwatch();
          composer.forgetDraft(conversation.id);
          if (request.images) host.attachments.clear();
          if (request.action === "edit") composer.endEdit();
        },
        onDelta: (text) => answer.append(text),
        onDone: (message) => {
          stored = message;
        },
        onDecisions: (list) => decisions.push(...list),
      });
    } catch (err) {
      if (err.name === "AbortError") stopped = true;
      else failure = err;
    } finally {
      this.unwatch();
      answer.end();
      this.answer = null;
      this.controller = null;
      host.setStreaming(false);
    }

    if (host.conversation().id !== conversation.id) {
      // The user went to another conversation meanwhile: leave that one's screen alone.
      this.settled = null;
      host.refreshList();
      return null;
    }
    if (!start) {
      // Nothing was stored: back to how it was, with the text back in the box.
      if (!before.id && conversation.id) {
        // It was created for this message alone: leave no empty conversation behind.
        composer.forgetDraft(conversation.id);
        await deleteConversation(conversation.id).catch(() => {});
        host.abandonConversation(before);
        conversation = before;
        host.refreshList();
      }
      this.settled = null;
      host.setMessages(kept);
      if (typed !== null) composer.setValue(typed, conversation.id);
      host.attachments?.render(); // shown again, still attached
      if (failure) host.showError(failure, () => this.retry(asked));
      else host.announce(t("announce_stopped"));
      composer.focus();
      return null;
    }

    const messages = this.settled;
    this.settled = null;
    if (start.user_message) messages.push(start.user_message);
    messages.push(
      stored || {
        id: start.assistant_message_id,
        role: "assistant",
        content: answer.text,
        model,
        status: stopped ? "stopped" : "error",
        error: failure ? failure.message : null,
        usage: null,
        citations: start.citations || [],
      },
    );
    if (!messages.at(-1).citations?.length && start.citations?.length) {
      messages.at(-1).citations = start.citations;
    }
    if (decisions.length) messages.at(-1).decisions = decisions;
    // The failure's code lets the note under the answer say why in the page's language.
    if (failure?.code && !messages.at(-1).error_code) messages.at(-1).error_code = failure.code;
    host.setMessages(messages);
    if (failure) host.showError(failure, () => this.regenerate());
    const final = messages.at(-1);
    if (final.status === "stopped") host.announce(t("announce_stopped"));
    else if (final.status === "error") host.announce(t("announce_error"));
    else if (!spoken) host.announce(final.content.trim() || t("announce_complete"));
    host.refreshList();
    return final;
  }

  /** Retrying a send or an edit takes the text (and images) now in the box: the user may have
   * fixed them. */
  retry(request) {
    if (request.action === "regenerate") return this.regenerate();
    const text = this.host.composer.value;
    if (!text.trim() && !this.host.attachments?.count) return undefined;
    return this.reply({ ...request, content: text });
  }

  /** Until the first token: say whether the model is loading, queued or thinking (the reply's
   * own `queue` events, when they come, say better than the server-wide queue length). */
  watchModel(model, answer) {
    this.shown = "";
    this.line = null;
    const check = async () => {
      try {
        const health = await api("GET", "/health");
        if (!this.poller) return;
        const name = model || health.default_model;
        const resident = (health.models || []).find((m) => m.name === name);
        let key = "status_thinking";
        if (!resident || resident.state === "loading") key = "status_loading";
        else if (resident.state === "crashed") key = "status_restarting";
        else if (resident.queued > 0) key = "status_queued";
        if (this.line && (key === "status_queued" || key === "status_thinking")) return;
        if (key !== this.shown && this.poller) {
          this.shown = key;
          answer.setStatus(t(key));
        }
      } catch {
        // The reply itself reports unreachable servers; the status just stays as it is.
      }
    };
    this.poller = setInterval(check, 1000);
    check();
  }

  unwatch() {
    clearInterval(this.poller);
    this.poller = 0;
  }
}
