// Talking to the server: JSON calls, the reply event stream, and errors turned into
// plain-language messages (catalogue keys, so they are translated like the rest).

import { currentLanguage, has } from "./i18n.js";

export class ApiError extends Error {
  constructor(
    kind,
    { status = 0, code = null, param = null, message = "", retryAfter = null, details = null } = {},
  ) {
    super(message || kind);
    this.kind = kind; // "http" | "network" | "stream" | "protocol"
    this.status = status;
    this.code = code;
    this.param = param;
    this.retryAfter = retryAfter;
    this.details = details; // the body's "iaforall" fields: a quota's name, the rules' decisions
  }
}

// With accounts, every state-changing call made with the session cookie proves it comes from
// this page with the session's CSRF token (null without accounts: nothing is sent).
let csrfToken = null;
let onSignedOut = null;
const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);
// Logging in and setting up answer 401 for a wrong password: that is not a lost session.
const SIGNING_IN = /^\/web\/api\/(session|setup)$/;

export function setCsrfToken(token) {
  csrfToken = token || null;
}

/** Called (once per 401) when the server no longer knows this browser: the session ended. */
export function whenSignedOut(handler) {
  onSignedOut = handler;
}

async function errorFromResponse(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy page, say): the status alone tells enough.
  }
  // Ollama's endpoints (/api/pull…) say {"error": "message", "code": …}; ours, {"error": {...}}
  const error =
    typeof body.error === "string" ? { message: body.error, code: body.code } : body.error || {};
  const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  return new ApiError("http", {
    status: response.status,
    code: error.code || null,
    param: error.param || null,
    message: error.message || response.statusText,
    retryAfter: Number.isFinite(retry) ? retry : null,
    details: body.iaforall || null,
  });
}

async function send(method, path, body, signal) {
  const init = { method, signal, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (csrfToken && !SAFE.has(method)) init.headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("network", { message: String(err) });
  }
  if (!response.ok) {
    const error = await errorFromResponse(response);
    if (response.status === 401 && onSignedOut && !SIGNING_IN.test(path)) onSignedOut(error);
    throw error;
  }
  return response;
}

/** A multipart form (a file upload), answered with JSON; same errors and CSRF handling. */
export async function apiForm(path, form) {
  const init = { method: "POST", body: form, headers: { Accept: "application/json" } };
  if (csrfToken) init.headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError("network", { message: String(err) });
  }
  if (!response.ok) {
    const error = await errorFromResponse(response);
    if (response.status === 401 && onSignedOut) onSignedOut(error);
    throw error;
  }
  return response.json();
}

/** An answer's bytes (audio…), with the same errors and CSRF handling as the JSON calls. */
export async function apiBlob(method, path, body, signal) {
  return (await send(method, path, body, signal)).blob();
}

export async function api(method, path, body) {
  const response = await send(method, path, body);
  return response.status === 204 ? null : response.json();
}

/** A call answered with JSON lines (Ollama's /api/pull): yields each object as it comes; an
 * {"error"} line throws an ApiError of kind "stream". */
export async function* apiLines(method, path, body) {
  const response = await send(method, path, body);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end = buffer.indexOf("\n");
    while (end !== -1) {
      const line = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 1);
      if (line) {
        const event = JSON.parse(line);
        if (event.error) {
          throw new ApiError("stream", {
            code: event.code || null,
            message: String(event.error),
            details: event.iaforall || null,
          });
        }
        yield event;
      }
      end = buffer.indexOf("\n");
    }
  }
}

/** A call answered with server-sent events (the pictures drawn): yields {event, data}. */
export async function* apiEvents(method, path, body, signal) {
  const response = await send(method, path, body, signal);
  yield* readEvents(response.body);
}

/** Split an event stream into events as they arrive: yields {event, data}. */
export async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end = buffer.indexOf("\n\n");
    while (end !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
      end = buffer.indexOf("\n\n");
    }
  }
}

/**
 * Ask for a reply and follow its stream. Handlers: onDecisions(list) for the published
 * rules' decisions on the answer, onQueue({position, wait_s}) while it
 * waits for its turn (before onStart), onStart(start), onDelta(text), onDone(message). An
 * {"error"} in the stream throws an ApiError of kind "stream" (before the answer started if
 * onStart never ran: an error at the end of a wait in line).
 */
export async function streamReply(
  conversationId,
  body,
  { signal, onQueue, onStart, onDelta, onDone, onDecisions },
) {
  const path = `/web/api/conversations/${encodeURIComponent(conversationId)}/reply`;
  const response = await send("POST", path, body, signal);
  let streamError = null;
  try {
    for await (const { event, data } of readEvents(response.body)) {
      if (data === "[DONE]") break;
      const payload = JSON.parse(data);
      if (event === "queue") onQueue?.(payload);
      else if (event === "start") onStart(payload);
      else if (event === "done") onDone(payload.message);
      else if (event === "decisions") onDecisions?.(payload.decisions || []);
      else if (payload.error) {
        streamError = new ApiError("stream", {
          code: payload.error.code,
          param: payload.error.param || null,
          message: payload.error.message,
          details: payload.iaforall || null,
        });
      } else {
        const text = payload.choices?.[0]?.delta?.content;
        if (text) onDelta(text);
      }
    }
  } catch (err) {
    if (err.name === "AbortError" || signal?.aborted) throw err;
    throw new ApiError("network", { message: String(err) });
  }
  if (streamError) throw streamError;
}

// The server writes its messages in English, for the people who read its API. A page in
// English shows them (they are the most precise); a page in any other language says the
// catalogue's sentence for the error's stable code instead: never an English sentence there.
const SERVER_LANGUAGE = "en";

/**
 * Why it failed, said in the page's language: the server's own sentence on an English page,
 * else the catalogue's sentence for the error's code. `problem`: an ApiError, or a stored
 * {code, message} (a knowledge file that could not be read). A catalogue `{key, vars}` or text.
 */
export function explain(problem) {
  if (problem.message && currentLanguage() === SERVER_LANGUAGE) return problem.message;
  return codeSentence(problem);
}

/** The catalogue's sentence for an error's code (`error_code_<code>`), in any language. */
export function codeSentence({ code = null, param = null, status = 0, details = null }) {
  const quota = details?.quota;
  if (code === "quota_exceeded" && quota && has(`error_quota_${quota}`)) {
    return { key: `error_quota_${quota}`, vars: {} };
  }
  const rule = (details?.decisions || []).find((d) => d.action === "block");
  if (code === "policy_blocked" && rule) {
    return {
      key: "error_code_policy_blocked_rule",
      vars: { rule: rule.rule, description: rule.description || "" },
    };
  }
  if (code && has(`error_code_${code}`)) {
    return { key: `error_code_${code}`, vars: { param: param || "…" } };
  }
  return { key: "error_code_unknown", vars: { status: status || code || "…" } };
}

/** What went wrong, as a catalogue key and its values, for the person at the keyboard. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return { key: "error_unexpected", vars: { detail: String(err) } };
  if (err.kind === "network") return { key: "error_network", vars: {} };
  const detail = explain(err);
  if (err.kind === "stream") {
    if (err.code === "server_busy") return { key: "error_busy", vars: {} }; // waited too long
    if (err.code === "timeout") return { key: "error_timeout", vars: {} };
    return { key: "error_interrupted", vars: { detail } };
  }
  switch (err.status) {
    case 401:
      return { key: "error_signed_out", vars: {} };
    case 403:
      return { key: "error_forbidden", vars: { detail } };
    case 429:
      if (err.code === "quota_exceeded") return { key: "error_quota", vars: { detail } };
      return err.retryAfter
        ? { key: "error_busy_wait", vars: { seconds: err.retryAfter } }
        : { key: "error_busy", vars: {} };
    case 503:
      return { key: "error_engine_restarting", vars: {} };
    case 504:
      return { key: "error_timeout", vars: {} };
    case 413:
      if (err.code === "storage_quota_exceeded") return { key: "error_quota", vars: { detail } };
      if (err.code === "too_long_for_rules") return { key: "error_bad_request", vars: { detail } };
      return { key: "error_too_large", vars: {} };
    case 404:
      if (err.code === "model_not_found") return { key: "error_model_not_found", vars: {} };
      if (!err.code || err.code === "not_found") return { key: "error_not_found", vars: {} };
      return { key: "error_detail", vars: { detail } }; // a missing voice…: says which
    case 400:
    case 408:
    case 409:
    case 415:
      if (err.code === "context_length_exceeded") return { key: "error_too_long", vars: {} };
      return { key: "error_bad_request", vars: { detail } };
    default:
      return { key: "error_server", vars: { status: err.status, detail } };
  }
}
