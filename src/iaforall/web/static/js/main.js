// Wiring: language, signing in, models, routing (#/c/{id}), the open conversation and its actions.

import { About, whyMissing } from "./about.js";
import { ensureSignedIn, setUpUserMenu, watchSession } from "./account.js";
import { Attachments } from "./attachments.js";
import { api, ApiError, describeError } from "./api.js";
import { Chat } from "./chat.js";
import { setUpCitationDialog } from "./citations.js";
import { Composer } from "./composer.js";
import { Drawing } from "./draw.js";
import {
  ConversationList, deleteConversation, displayTitle, exportUrl, getConversation,
  importConversation, patchConversation,
} from "./conversations.js";
import { confirmDialog, promptDialog, setUpDialogs } from "./dialogs.js";
import {
  applyTranslations, cataloguesFound, currentLanguage, formatNumber, pickLanguage, setLanguage,
  storedLanguage, t,
} from "./i18n.js";
import { KnowledgePanel } from "./knowledge.js";
import { keepShell } from "./offline.js";
import { MessageView, setUpCopyButtons } from "./messages.js";
import { SettingsPanel } from "./settings.js";
import { ReadAloud } from "./speech.js";
import { renderHelp, setUpShortcuts } from "./shortcuts.js";
import { setUpLayout } from "./layout.js";
import { Talk } from "./talk.js";

const $ = (id) => document.getElementById(id);
const blank = () => ({
  id: null, title: "", model: null, system_prompt: "", remove_builtin_prompt: false, messages: [], knowledge: [], knowledge_files: [],
  settings: { temperature: null, top_p: null, max_tokens: null, seed: null },
});

const state = {
  conversation: blank(), defaultModel: null, models: [], languages: [], userMenu: null,
};

// One answer is read aloud at a time; its button says how to stop it (the button drawn for it
// now: a new language draws the messages again while it plays).
const reading = {
  id: null,
  button: null,
  voice: new ReadAloud({
    onError: (err) => showError(err),
    onChange: (playing) => {
      if (!playing) reading.id = null;
      reading.button?.replaceChildren(playing ? t("action_stop_reading") : t("action_read_aloud"));
    },
  }),
};

const about = new About();
const view = new MessageView($("messages"), {
  onEdit: (message) => composer.startEdit(message.content),
  onRegenerate: () => chat.regenerate(),
  onDrawAgain: (prompt) => drawing.draw(prompt),
  onReadAloud: (message, button) => {
    if (reading.id !== message.id) reading.voice.stop(); // another answer: stop this one
    reading.id = message.id;
    reading.button = button;
    reading.voice.read(message.content);
  },
  readingAloud(message, button) {
    if (!reading.voice.playing || reading.id !== message.id) return false;
    reading.button = button;
    return true;
  },
  readAloudOff() {
    const speaking = about.speaking();
    return speaking && speaking.status !== "ok" ? t("speech_unavailable", { why: whyMissing(speaking) }) : null;
  },
});
const attachments = new Attachments({ announce, showError: (err) => showError(err) });
const drawing = new Drawing({
  container: $("messages"),
  announce,
  showError: (err) => showError(err),
  capability: () => about.row("drawing"),
  conversation: () => state.conversation,
  ensureConversation: () => chat.ensureConversation(),
  addMessage(message) {
    // Kept: at the end of the conversation. While an answer is written, it shows once that ends.
    state.conversation.messages = [...(state.conversation.messages || []), message];
    if (chat.streaming) chat.settled?.push(message);
    else {
      view.render(state.conversation);
      view.scrollToEnd(true);
    }
    refreshAfterReply();
  },
});
const composer = new Composer({
  conversationId: () => state.conversation.id,
  hasAttachments: () => attachments.count > 0,
  submit: (text, { editing }) => {
    const prompt = editing ? null : drawing.promptOf(text);
    if (prompt !== null) return drawing.draw(prompt).then((drawn) => drawn && composer.setValue(""));
    return editing ? chat.edit(text) : chat.send(text);
  },
});
const list = new ConversationList({ currentId: () => state.conversation.id, onError: showError });
const layout = setUpLayout();
const chat = new Chat({
  view,
  composer,
  attachments,
  conversation: () => state.conversation,
  model: () => $("model-select").value || state.defaultModel,
  adoptConversation(conversation) {
    composer.adopt(conversation.id);
    state.conversation = { ...conversation, messages: state.conversation.messages };
    history.replaceState(null, "", `#/c/${encodeURIComponent(conversation.id)}`);
    showHeader();
  },
  /** Back to the unsaved new chat `unsaved` was (its server copy has been deleted). */
  abandonConversation(unsaved) {
    state.conversation = { ...unsaved, messages: [] };
    history.replaceState(null, "", location.pathname + location.search);
    showHeader();
  },
  setMessages(messages) {
    state.conversation.messages = messages;
    view.render(state.conversation);
    view.scrollToEnd(true);
  },
  announce,
  showError,
  clearError,
  refreshList: () => refreshAfterReply(),
  setStreaming: (on) => composer.setStreaming(on),
});
const talk = new Talk({
  composer,
  send: (text) => chat.send(text, { spoken: true }), // read aloud: not also announced
  speak(markdown) {
    reading.id = null;
    reading.button = null;
    return reading.voice.speak(markdown);
  },
  stopSpeaking: () => reading.voice.stop(),
  models: () => state.models,
  showError: (err) => showError(err),
  announce,
});
const settings = new SettingsPanel({
  conversation: () => state.conversation,
  draft: () => composer.value,
  model: () => $("model-select").value || state.defaultModel,
  saved(conversation) {
    state.conversation = { ...conversation, messages: state.conversation.messages };
  },
  onError: showError,
});

const knowledge = new KnowledgePanel({
  conversation: () => state.conversation,
  /** The bases and files searched for each answer: saved now, or with the chat when created. */
  async save(fields) {
    const open = state.conversation;
    if (!open.id) {
      state.conversation = { ...open, ...fields };
      return;
    }
    const updated = await patchConversation(open.id, fields);
    if (state.conversation.id === open.id) {
      state.conversation = { ...updated, messages: state.conversation.messages };
    }
  },
  onError: showError,
});

/** Say something once to screen readers (cleared first so a repeat is still spoken). */
function announce(text) {
  const region = $("announcer");
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 100);
}

function clearError() {
  $("error-region").replaceChildren();
}

/** A plain-language alert with Retry (when there is something to retry) and Dismiss. */
function showError(err, retry = null) {
  if (err?.name === "AbortError") return;
  const { key, vars } = err?.i18nKey ? { key: err.i18nKey, vars: { ...err.vars } } : describeError(err);
  if (typeof vars.seconds === "number") vars.seconds = formatNumber(vars.seconds);
  const box = document.createElement("div");
  box.className = "error-box";
  const text = document.createElement("p");
  text.className = "error-text";
  text.textContent = t(key, vars);
  const buttons = document.createElement("div");
  buttons.className = "error-buttons";
  if (retry) {
    const again = document.createElement("button");
    again.type = "button";
    again.className = "button primary";
    again.textContent = t("action_retry");
    again.addEventListener("click", () => {
      clearError();
      retry();
    });
    buttons.append(again);
  }
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "button";
  dismiss.textContent = t("action_dismiss");
  dismiss.addEventListener("click", () => {
    clearError();
    composer.focus();
  });
  buttons.append(dismiss);
  box.append(text, buttons);
  $("error-region").replaceChildren(box);
}

function showHeader() {
  const { conversation } = state;
  $("conversation-title").textContent = displayTitle(conversation);
  document.title = conversation.id
    ? t("document_title_conversation", { title: displayTitle(conversation) })
    : t("document_title");
  $("conversation-menu-button").hidden = !conversation.id;
  if (conversation.id) {
    $("export-markdown").href = exportUrl(conversation.id, "markdown");
    $("export-json").href = exportUrl(conversation.id, "json");
  }
  selectModel(conversation.model);
  knowledge.renderLine();
  list.markCurrent();
}

function selectModel(model) {
  const select = $("model-select");
  const wanted = model || state.defaultModel;
  if (wanted && [...select.options].some((o) => o.value === wanted)) select.value = wanted;
}

async function refreshAfterReply() {
  if (!state.conversation.title && state.conversation.id) {
    try {
      const fresh = await getConversation(state.conversation.id);
      state.conversation.title = fresh.title;
      showHeader();
    } catch {
      // The title is cosmetic; the list refresh below reports real trouble.
    }
  }
  list.refresh();
}

/** Open the conversation the URL names (or a new one). */
async function route() {
  const match = /^#\/c\/(.+)$/.exec(location.hash);
  const id = match ? decodeURIComponent(match[1]) : null;
  if (id === state.conversation.id && id !== null) return;
  if (chat.streaming) chat.stop();
  clearError();
  layout.closeSidebar({ focus: false });
  if (!id) {
    state.conversation = blank();
  } else {
    try {
      state.conversation = await getConversation(id);
    } catch (err) {
      state.conversation = blank();
      history.replaceState(null, "", location.pathname + location.search);
      showError(err);
    }
  }
  showHeader();
  view.render(state.conversation);
  view.scrollToEnd(true);
  composer.restore(state.conversation.id);
}

function newChat() {
  if (location.hash) history.pushState(null, "", location.pathname + location.search);
  route().then(() => composer.focus());
}

async function rename() {
  layout.closeMenu();
  const title = await promptDialog({ value: state.conversation.title });
  if (title === null || !state.conversation.id) return;
  try {
    const updated = await patchConversation(state.conversation.id, { title });
    state.conversation.title = updated.title;
    showHeader();
    announce(t("announce_renamed", { title: displayTitle(updated) }));
    list.refresh();
  } catch (err) {
    showError(err);
  }
}

async function remove() {
  layout.closeMenu();
  const ok = await confirmDialog({
    title: t("delete_title"),
    message: t("delete_message", { title: displayTitle(state.conversation) }),
    confirmLabel: t("action_delete"),
  });
  if (!ok || !state.conversation.id) return;
  try {
    await deleteConversation(state.conversation.id);
    composer.forgetDraft(state.conversation.id);
    announce(t("announce_deleted"));
    await list.refresh();
    newChat();
  } catch (err) {
    showError(err);
  }
}

async function importFile(file) {
  let doc;
  try {
    doc = JSON.parse(await file.text());
  } catch {
    showError({ i18nKey: "error_import_file" });
    return;
  }
  try {
    const conversation = await importConversation(doc);
    announce(t("announce_imported", { title: displayTitle(conversation) }));
    await list.refresh();
    location.hash = `#/c/${encodeURIComponent(conversation.id)}`;
  } catch (err) {
    showError(err);
  }
}

async function loadModels() {
  const select = $("model-select");
  try {
    const [models, health] = await Promise.all([
      api("GET", "/web/api/models"),
      api("GET", "/health"),
    ]);
    state.defaultModel = health.default_model;
    state.models = models.data.map((m) => m.id); // voice in and out look for theirs here
    // The picker offers the models that chat: Whisper, the voices, OCR and the sentence
    // encoder answer other requests (picked, they answered 404).
    select.replaceChildren(
      ...models.data.filter((m) => m.kind === "chat").map((m) => {
        const option = document.createElement("option");
        option.value = m.id;
        option.textContent = m.id;
        return option;
      }),
    );
  } catch (err) {
    showError(err, () => loadModels().then(showHeader));
  }
}

async function loadLanguages() {
  try {
    state.languages = (await api("GET", "/web/api/languages")).data;
  } catch (err) {
    // The server cannot be reached (the app opened from this device's copy): say it in the
    // language chosen before, from the catalogues kept here.
    state.unreachable = err instanceof ApiError && err.kind === "network";
    state.languages = await cataloguesFound();
  }
  // The app's and the sign-in screen's language choices: the same list, kept in step.
  for (const select of [$("language-select"), $("auth-language")]) {
    select.replaceChildren(
      ...state.languages.map(({ code, name }) => {
        const option = document.createElement("option");
        option.value = code;
        option.lang = code; // each language named in itself, read in its own voice
        option.textContent = name;
        return option;
      }),
    );
  }
  await setLanguage(pickLanguage(state.languages, navigator.languages, storedLanguage()));
  $("language-select").value = currentLanguage();
  $("auth-language").value = currentLanguage();
}

/** Everything drawn from the catalogue again, in the new language. */
async function switchLanguage(code) {
  await setLanguage(code, { remember: true });
  $("language-select").value = code;
  $("auth-language").value = code;
  state.userMenu?.render();
  renderHelp();
  showHeader();
  view.relabel(state.conversation, chat.settled); // an answer being written stays
  chat.render();
  list.render();
  attachments.render();
  talk.render();
  about.render();
  knowledge.render();
}

async function start() {
  keepShell();
  setUpDialogs();
  setUpCopyButtons($("messages"), announce);
  setUpCitationDialog();
  await loadLanguages();
  renderHelp();
  applyTranslations(document);
  $("language-select").addEventListener("change", (e) => switchLanguage(e.target.value));
  $("auth-language").addEventListener("change", (e) => switchLanguage(e.target.value));
  if (state.unreachable) {
    // Opened without the server: the page is here, the conversations are not. Say so.
    showError({ i18nKey: "offline_unreachable", vars: {} }, () => location.reload());
    document.body.dataset.offline = "true";
    document.body.dataset.ready = "true";
    return;
  }
  try {
    await ensureSignedIn();
  } catch (err) {
    showError(err, () => location.reload());
  }
  watchSession({
    signedIn() {
      clearError();
      composer.focus();
    },
  });
  state.userMenu = setUpUserMenu(layout);
  await Promise.all([loadModels(), about.load()]);
  $("model-select").addEventListener("change", async (event) => {
    const model = event.target.value;
    state.conversation.model = model;
    if (!state.conversation.id) return;
    try {
      await patchConversation(state.conversation.id, { model });
    } catch (err) {
      showError(err);
    }
  });
  await knowledge.load();
  $("new-chat").addEventListener("click", newChat);
  // Choosing a conversation (even the open one) hides the overlay and goes to the message box.
  $("conversation-list").addEventListener("click", (event) => {
    if (!event.target.closest("a")) return;
    layout.closeSidebar({ focus: false });
    composer.focus();
  });
  $("stop-button").addEventListener("click", () => chat.stop());
  $("rename-button").addEventListener("click", rename);
  $("delete-button").addEventListener("click", remove);
  $("import-button").addEventListener("click", () => $("import-file").click());
  $("import-file").addEventListener("change", (event) => {
    const [file] = event.target.files;
    event.target.value = "";
    if (file) importFile(file);
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("popstate", route);
  setUpShortcuts({
    stop: () => chat.stop(),
    streaming: () => chat.streaming,
    focusInput: () => composer.focus(),
    newChat,
    toggleSidebar: () => layout.showConversations(),
    closeMenus: () => layout.closeMenu() || layout.closeSidebar() || talk.escape(),
    dictate() {
      const hearing = about.hearing();
      if (hearing && hearing.status !== "ok") {
        showError({ i18nKey: "voice_unavailable", vars: { why: whyMissing(hearing) } });
      } else {
        talk.toggleDictation();
      }
    },
  });
  await route();
  list.refresh();
  document.body.dataset.ready = "true"; // for tests and for the CSS that hides the first paint
}

start();
