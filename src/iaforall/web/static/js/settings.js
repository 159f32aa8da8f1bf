// "Settings and transparency": the conversation's system prompt and generation settings,
// the model's built-in prompt (shown, to replace or remove), and the exact text the model is
// given. Nothing is hidden from the user.

import { api, describeError } from "./api.js";
import { conversationPath, patchConversation } from "./conversations.js";
import { t } from "./i18n.js";
import { openDialog } from "./dialogs.js";

const $ = (id) => document.getElementById(id);
const FIELDS = ["temperature", "top_p", "max_tokens", "seed"];
const INTEGER = new Set(["max_tokens", "seed"]);

/**
 * host: { conversation() -> the open conversation (id null until created),
 *         draft() -> the unsent text, model() -> the chosen model,
 *         saved(conversation) -> after a save, onError(err) }
 */
export class SettingsPanel {
  constructor(host) {
    this.host = host;
    this.dialog = $("settings-dialog");
    $("settings-button").addEventListener("click", () => this.open());
    $("settings-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    $("settings-close").addEventListener("click", () => this.dialog.close());
    $("prompt-button").addEventListener("click", () => this.showPrompt());
    this.builtin = null; // { model, text, used } of the model shown, once read
    $("system-prompt").addEventListener("input", () => this.showBuiltin());
    $("remove-builtin-prompt").addEventListener("change", () => this.showBuiltin());
    $("replace-builtin-prompt").addEventListener("click", () => {
      const own = $("system-prompt");
      own.value = this.builtin?.text || "";
      this.showBuiltin();
      own.focus();
    });
  }

  /** The model's built-in prompt, read from its chat template by the server. */
  async readBuiltin() {
    const conversation = this.host.conversation();
    const model = this.host.model() || conversation.model || "";
    this.builtin = null;
    $("builtin-prompt-status").textContent = t("builtin_prompt_loading", { model: model || "…" });
    $("builtin-prompt-text").hidden = true;
    $("replace-builtin-prompt").hidden = true;
    try {
      const query = model ? `?model=${encodeURIComponent(model)}` : "";
      this.builtin = await api("GET", `/web/api/models/builtin-prompt${query}`);
    } catch (err) {
      const { key, vars } = describeError(err);
      $("builtin-prompt-status").textContent = t(key, vars);
      return;
    }
    this.showBuiltin();
  }

  /** Say what becomes of the built-in prompt with the form as it is now. */
  showBuiltin() {
    const builtin = this.builtin;
    if (!builtin) return;
    const model = builtin.model;
    const text = $("builtin-prompt-text");
    let key;
    if (!builtin.text) key = "builtin_prompt_none";
    else if ($("system-prompt").value) key = "builtin_prompt_replaced";
    else if ($("remove-builtin-prompt").checked) key = "builtin_prompt_removed";
    else if (builtin.used) key = "builtin_prompt_used";
    else key = "builtin_prompt_unused";
    $("builtin-prompt-status").textContent = t(key, { model });
    text.textContent = builtin.text || "";
    text.hidden = !builtin.text;
    $("replace-builtin-prompt").hidden = !builtin.text;
  }

  open() {
    const conversation = this.host.conversation();
    $("system-prompt").value = conversation.system_prompt || "";
    $("remove-builtin-prompt").checked = Boolean(conversation.remove_builtin_prompt);
    for (const name of FIELDS) {
      const value = conversation.settings?.[name];
      $(`setting-${name}`).value = value ?? "";
    }
    this.setStatus("");
    $("prompt-output").hidden = true;
    $("prompt-output-label").hidden = true;
    openDialog(this.dialog, $("system-prompt"));
    this.readBuiltin();
  }

  /** The form's values, or null (with the invalid field focused) when one is wrong. */
  values() {
    const settings = {};
    for (const name of FIELDS) {
      const input = $(`setting-${name}`);
      input.setCustomValidity("");
      const raw = input.value.trim();
      if (!input.checkValidity() || (raw && INTEGER.has(name) && !/^-?\d+$/.test(raw))) {
        input.setCustomValidity(t("settings_invalid"));
        input.reportValidity();
        return null;
      }
      settings[name] = raw === "" ? null : Number(raw);
    }
    return {
      system_prompt: $("system-prompt").value,
      remove_builtin_prompt: $("remove-builtin-prompt").checked,
      settings,
    };
  }

  async save() {
    const fields = this.values();
    if (!fields) return false;
    const conversation = this.host.conversation();
    try {
      if (conversation.id) {
        this.host.saved(await patchConversation(conversation.id, fields));
      } else {
        // Not created yet: kept here and sent with the request that creates it.
        this.host.saved({ ...conversation, ...fields });
      }
      this.setStatus(t("settings_saved"));
      return true;
    } catch (err) {
      this.host.onError(err);
      return false;
    }
  }

  async showPrompt() {
    if (!(await this.save())) return;
    const conversation = this.host.conversation();
    const draft = this.host.draft();
    const model = this.host.model();
    const output = $("prompt-output");
    try {
      let result;
      if (conversation.id) {
        const body = { draft, ...(model ? { model } : {}) };
        result = await api("POST", `${conversationPath(conversation.id)}/prompt`, body);
      } else {
        // As the conversation will be sent: a system message only if one was written, or
        // an empty one if the model's built-in prompt was removed.
        const system = conversation.system_prompt || "";
        const messages = system || conversation.remove_builtin_prompt
          ? [{ role: "system", content: system }] : [];
        const body = { model, messages };
        if (draft) messages.push({ role: "user", content: draft });
        // The passages of the chosen knowledge bases go before the question, as they will.
        if (draft && conversation.knowledge?.length) {
          body.iaforall = { knowledge: { bases: conversation.knowledge } };
        }
        result = await api("POST", "/v1/chat/prompt", body);
      }
      output.textContent = result.prompt;
      output.hidden = false;
      $("prompt-output-label").hidden = false;
      const shown = t("prompt_shown", { model: result.model || model });
      const builtin = result.builtin_system_prompt?.used ? ` ${t("prompt_includes_builtin")}` : "";
      this.setStatus(shown + builtin);
    } catch (err) {
      this.host.onError(err);
    }
  }

  setStatus(text) {
    $("settings-status").textContent = text;
  }
}
