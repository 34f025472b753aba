// Warren's browser page: sign in/up/out, the org's sessions, and one live session.
//
// Routes live in the URL hash: `#/` is the session list, `#/sessions/<id>` a session.

import { api, ApiError } from "./api.js";
import { SessionConnection } from "./connection.js";
import { TranscriptView } from "./transcript.js";

const $ = (id) => document.getElementById(id);

const STATUS_LABELS = {
  creating: "Creating",
  resuming: "Starting",
  running: "Running",
  paused: "Paused",
  stopped: "Stopped",
  error: "Error",
  migrating: "Migrating",
};
const CONNECTION_LABELS = {
  idle: "",
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  disconnected: "Disconnected",
};

const state = {
  me: null,
  nextCursor: null,
  /** The open session: {id, connection, transcript} or null. */
  open: null,
};

// --- views -------------------------------------------------------------------------------

function show(viewId) {
  for (const id of ["loading", "auth-view", "sessions-view", "session-view"]) {
    $(id).hidden = id !== viewId;
  }
  $("account").hidden = !state.me;
}

function setError(id, err) {
  $(id).textContent = err ? (err instanceof Error ? err.message : String(err)) : "";
}

function setBusy(form, busy) {
  for (const control of form.querySelectorAll("button, input, textarea")) control.disabled = busy;
}

// --- auth ----------------------------------------------------------------------------------

function setAuthMode(mode) {
  const signUp = mode === "sign-up";
  $("sign-in-form").hidden = signUp;
  $("sign-up-form").hidden = !signUp;
  $("auth-title").textContent = signUp ? "Create an account" : "Sign in";
  setError("auth-error", null);
  $(signUp ? "sign-up-name" : "sign-in-email").focus();
}

async function loadMe() {
  try {
    state.me = await api("GET", "/api/auth/me");
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    state.me = null;
  }
  renderAccount();
}

function renderAccount() {
  const me = state.me;
  $("account-name").textContent = me ? me.user.email : "";
  $("org-name").textContent = me?.active_org ? `in ${me.active_org.name}` : "";
}

async function submitAuth(event, path, fields) {
  event.preventDefault();
  const form = event.currentTarget;
  const body = {};
  for (const name of fields) body[name] = form.elements[name].value;
  setError("auth-error", null);
  setBusy(form, true);
  try {
    await api("POST", path, body);
    form.reset();
    await loadMe();
    await route();
  } catch (err) {
    setError("auth-error", err);
  } finally {
    setBusy(form, false);
  }
}

async function signOut() {
  closeSession();
  try {
    await api("POST", "/api/auth/sign-out");
  } finally {
    state.me = null;
    renderAccount();
    window.location.hash = "#/";
    await route();
    setAuthMode("sign-in");
  }
}

// --- session list ----------------------------------------------------------------------------

function sessionItem(session) {
  const item = document.createElement("li");
  const link = document.createElement("a");
  link.href = `#/sessions/${encodeURIComponent(session.id)}`;
  link.className = "session-link";
  const title = document.createElement("span");
  title.className = "session-title";
  title.textContent = session.title || "Untitled session";
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.dataset.status = session.client_status;
  badge.textContent = STATUS_LABELS[session.client_status] ?? session.client_status;
  const time = document.createElement("time");
  time.className = "muted";
  time.dateTime = session.created_at;
  time.textContent = new Date(session.created_at).toLocaleString();
  link.append(title, badge, time);
  item.append(link);
  return item;
}

async function loadSessions(more = false) {
  setError("list-error", null);
  const params = new URLSearchParams({ limit: "50" });
  if (more && state.nextCursor) params.set("cursor", state.nextCursor);
  try {
    const page = await api("GET", `/api/sessions?${params}`);
    const list = $("session-list");
    if (!more) list.replaceChildren();
    for (const session of page.sessions) list.append(sessionItem(session));
    state.nextCursor = page.next_cursor ?? null;
    $("list-more").hidden = !state.nextCursor;
    $("list-empty").hidden = list.children.length > 0;
  } catch (err) {
    setError("list-error", err);
  }
}

async function createSession(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const title = form.elements.title.value.trim();
  const prompt = form.elements.initial_prompt.value.trim();
  const body = {};
  if (title) body.title = title;
  if (prompt) body.initial_prompt = prompt;
  setError("create-error", null);
  setBusy(form, true);
  try {
    const created = await api("POST", "/api/sessions", body);
    form.reset();
    window.location.hash = `#/sessions/${encodeURIComponent(created.session_id)}`;
  } catch (err) {
    setError("create-error", err);
  } finally {
    setBusy(form, false);
  }
}

// --- one session -----------------------------------------------------------------------------

function setStatus(status) {
  const badge = $("session-status");
  badge.dataset.status = status;
  badge.textContent = STATUS_LABELS[status] ?? status;
}

function setConnection(connState, detail = {}) {
  const node = $("connection");
  node.dataset.state = connState;
  let text = CONNECTION_LABELS[connState] ?? connState;
  if (connState === "reconnecting" && detail.attempt) {
    text = `Reconnecting (try ${detail.attempt})…`;
  } else if (connState === "disconnected" && detail.reason && detail.reason !== "closed") {
    text = `Disconnected: ${detail.reason}`;
  }
  $("connection-text").textContent = text;
  $("reconnect").hidden = connState !== "disconnected" || detail.reason === "closed";
  updateControls();
}

function updateControls() {
  const open = state.open;
  const connected = open?.connection.state === "connected";
  $("send").disabled = !connected;
  $("cancel").disabled = !connected || !open.transcript.busy;
}

function nearBottom(node) {
  return node.scrollHeight - node.scrollTop - node.clientHeight < 48;
}

function onSessionEvent(event) {
  const open = state.open;
  if (!open) return;
  const list = $("transcript");
  const stick = nearBottom(list);
  switch (event.type) {
    case "init":
      open.transcript.reset(event.messages);
      if (event.config) {
        $("session-title").textContent = event.config.title || "Untitled session";
        setStatus(event.config.status);
      }
      break;
    case "status":
      setStatus(event.status);
      if (event.message) open.transcript.notice(event.message, "info");
      break;
    case "error":
      open.transcript.notice(event.message, "error");
      break;
    case "title_update":
      $("session-title").textContent = event.title;
      break;
    case "preview_url":
    case "pong":
      break;
    default:
      open.transcript.apply(event);
  }
  if (stick) list.scrollTop = list.scrollHeight;
  updateControls();
}

function closeSession() {
  if (state.open) {
    state.open.connection.stop();
    state.open = null;
  }
}

async function openSession(sessionId) {
  if (state.open?.id === sessionId) return;
  closeSession();
  const transcript = new TranscriptView($("transcript"));
  transcript.reset([]);
  $("session-title").textContent = "";
  $("session-status").textContent = "";
  setError("prompt-error", null);
  const connection = new SessionConnection(sessionId, {
    onEvent: onSessionEvent,
    onState: setConnection,
  });
  state.open = { id: sessionId, connection, transcript };
  show("session-view");
  $("prompt-input").focus();
  try {
    const session = await api("GET", `/api/sessions/${encodeURIComponent(sessionId)}`);
    if (state.open?.connection !== connection) return;
    if (!$("session-title").textContent) {
      $("session-title").textContent = session.title || "Untitled session";
    }
    if (!$("session-status").textContent) setStatus(session.client_status);
  } catch (err) {
    if (state.open?.connection !== connection) return;
    setError("prompt-error", err);
    if (err instanceof ApiError && err.status === 404) return;
  }
  connection.start();
}

function sendPrompt(event) {
  event.preventDefault();
  const input = $("prompt-input");
  const content = input.value.trim();
  if (!content || !state.open) return;
  const outcome = state.open.connection.request({ type: "prompt", content });
  input.value = "";
  setError(
    "prompt-error",
    outcome === "queued" ? "Not connected: your message is sent once the connection is back." : null,
  );
}

function cancelRun() {
  if (state.open && !state.open.connection.send({ type: "cancel" })) {
    setError("prompt-error", "Not connected: cancel was not sent.");
  }
}

// --- routing ---------------------------------------------------------------------------------

async function route() {
  if (!state.me) {
    closeSession();
    show("auth-view");
    return;
  }
  const match = /^#\/sessions\/([^/]+)$/.exec(window.location.hash);
  if (match) {
    await openSession(decodeURIComponent(match[1]));
    return;
  }
  closeSession();
  show("sessions-view");
  await loadSessions();
}

function init() {
  $("sign-in-form").addEventListener("submit", (e) =>
    submitAuth(e, "/api/auth/sign-in", ["email", "password"]));
  $("sign-up-form").addEventListener("submit", (e) =>
    submitAuth(e, "/api/auth/sign-up", ["name", "email", "password"]));
  for (const button of document.querySelectorAll("[data-auth-mode]")) {
    button.addEventListener("click", () => setAuthMode(button.dataset.authMode));
  }
  $("sign-out").addEventListener("click", signOut);
  $("create-form").addEventListener("submit", createSession);
  $("list-more").addEventListener("click", () => loadSessions(true));
  $("prompt-form").addEventListener("submit", sendPrompt);
  $("prompt-input").addEventListener("keydown", (e) => {
    // Ctrl/⌘+Enter sends; plain Enter is a new line.
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("prompt-form").requestSubmit();
  });
  $("cancel").addEventListener("click", cancelRun);
  $("reconnect").addEventListener("click", () => {
    const id = state.open?.id;
    closeSession();
    if (id) openSession(id);
  });
  window.addEventListener("hashchange", () => route());
  loadMe()
    .then(route)
    .catch((err) => {
      show("auth-view");
      setError("auth-error", err);
    });
}

init();
