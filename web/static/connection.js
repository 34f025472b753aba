// The session WebSocket: seq cursor, duplicate dropping, reconnection with backoff.
//
// Every server message carries `seq`. Logged events have seq > 0 and grow; the client
// remembers the last one it applied and reconnects with `?after_seq=<it>`, so the server
// replays exactly what was missed. Anything with seq <= the last seen is a duplicate and
// dropped. `init` carries the cursor its transcript is complete up to and replaces the
// cursor. seq == 0 is a reply to this socket only (pong, a status or error answer).
//
// Acks: the client tells the server the last seq it applied (`ack{seq}`) every
// ACK_EVERY_EVENTS events, or ACK_INTERVAL_MS after the first unacked one. A server
// behind a proxy that buffers without backpressure uses them to notice a client that
// cannot keep up (close 4008; the client then reconnects with its cursor).
//
// Requests: `request(message)` gives the message a `client_id` and keeps it until the server
// answers `client_ack` (applied) or an `error` naming that id. Whatever is still unanswered
// when a socket drops is sent again, in order, on the next one; the server applies a resent
// id once. A request made while disconnected waits for the next connection.

import { ApiError, fetchWsToken } from "./api.js";

export const BASE_DELAY_MS = 1000;
export const MAX_DELAY_MS = 30000;
export const MAX_RETRIES = 10;
/** Keep-alive ping period; a socket silent for 3 periods is treated as dropped. */
export const PING_INTERVAL_MS = 25000;
/** Ack after this many applied events at the latest... */
export const ACK_EVERY_EVENTS = 256;
/** ...or this long after the first event not acked yet. */
export const ACK_INTERVAL_MS = 1000;

/**
 * Close codes after which reconnecting cannot help: policy violation, a bad request, another
 * org's or a missing session. (4401 is retried: every attempt fetches a fresh token, and a
 * refused token request ends the retries.)
 */
const FATAL_CLOSE_CODES = new Set([1008, 4400, 4403, 4404]);

/** A fresh client id (crypto.randomUUID needs a secure context, which plain http lacks). */
export function newClientId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** Delay before reconnect attempt `attempt` (0-based): base × 2^attempt, capped. */
export function backoffDelay(attempt, baseMs = BASE_DELAY_MS, maxMs = MAX_DELAY_MS) {
  return Math.min(maxMs, baseMs * 2 ** attempt);
}

/** The WebSocket URL of a session on this page's origin. */
export function sessionSocketUrl(sessionId, token, afterSeq) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams({ token });
  if (afterSeq !== null) params.set("after_seq", String(afterSeq));
  return `${scheme}//${window.location.host}/api/sessions/${encodeURIComponent(sessionId)}/ws?${params}`;
}

/**
 * A live connection to one session. Calls `onEvent(message)` for every server message that
 * is not a duplicate, in order, and `onState(state, detail)` when the connection changes:
 * "connecting", "connected", "reconnecting" ({attempt, delayMs, code}) or "disconnected"
 * ({reason}). Options override the backoff (baseDelayMs, maxDelayMs, maxRetries), the
 * keep-alive (pingIntervalMs), acks (ackEvery, ackIntervalMs) and how a token is fetched
 * (fetchToken).
 */
export class SessionConnection {
  constructor(sessionId, { onEvent, onState = () => {}, ...options } = {}) {
    this.sessionId = sessionId;
    this.onEvent = onEvent;
    this.onState = onState;
    this.baseDelayMs = options.baseDelayMs ?? BASE_DELAY_MS;
    this.maxDelayMs = options.maxDelayMs ?? MAX_DELAY_MS;
    this.maxRetries = options.maxRetries ?? MAX_RETRIES;
    this.pingIntervalMs = options.pingIntervalMs ?? PING_INTERVAL_MS;
    this.ackEvery = options.ackEvery ?? ACK_EVERY_EVENTS;
    this.ackIntervalMs = options.ackIntervalMs ?? ACK_INTERVAL_MS;
    this.fetchToken = options.fetchToken ?? fetchWsToken;
    /** Last logged seq applied; null until the first `init` (the first connect asks for one). */
    this.lastSeq = null;
    this.socket = null;
    this.retries = 0;
    this.stopped = false;
    this.state = "idle";
    this._retryTimer = null;
    this._pingTimer = null;
    this._lastHeard = 0;
    this._unacked = 0;
    this._ackTimer = null;
    /** Requests not answered yet, by client id, in the order they were made. */
    this.pending = new Map();
  }

  /** Open the connection (once). */
  start() {
    this._connect();
  }

  /** Close for good: no reconnect. */
  stop() {
    this.stopped = true;
    clearTimeout(this._retryTimer);
    this._stopPing();
    this._resetAcks();
    if (this.socket) {
      this._detach(this.socket);
      this.socket.close(1000, "client closed");
      this.socket = null;
    }
    this._setState("disconnected", { reason: "closed" });
  }

  /** Send a client message; false (nothing sent) unless connected. */
  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /**
   * Send a request that must not be lost: "sent" now, or "queued" until the next connection
   * (and resent after a reconnect until the server acknowledges it).
   */
  request(message) {
    const withId = { ...message, client_id: newClientId() };
    this.pending.set(withId.client_id, withId);
    return this.send(withId) ? "sent" : "queued";
  }

  _resendPending() {
    for (const message of this.pending.values()) {
      if (!this.send(message)) return;
    }
  }

  _setState(state, detail = {}) {
    this.state = state;
    this.onState(state, detail);
  }

  async _connect() {
    if (this.stopped) return;
    if (this.retries === 0) this._setState("connecting");
    let token;
    try {
      token = await this.fetchToken();
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        this._giveUp("You are signed out.");
      } else {
        this._scheduleRetry(null);
      }
      return;
    }
    if (this.stopped) return;
    let socket;
    try {
      socket = new WebSocket(sessionSocketUrl(this.sessionId, token, this.lastSeq));
    } catch {
      this._scheduleRetry(null);
      return;
    }
    this.socket = socket;
    // Acks are per socket: the server holds a socket to the window only once it acks.
    this._resetAcks();
    socket.onopen = () => {
      this._lastHeard = Date.now();
      this._startPing();
      this._setState("connected");
      this._resendPending();
    };
    socket.onmessage = (event) => {
      this._lastHeard = Date.now();
      // The retry budget refills only once the server has actually spoken: a server that
      // accepts and then drops every connection still runs out of tries.
      this.retries = 0;
      this._receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this._stopPing();
      this._resetAcks();
      if (FATAL_CLOSE_CODES.has(event.code)) {
        this._giveUp(event.reason || `Connection refused (${event.code}).`);
      } else {
        this._scheduleRetry(event.code);
      }
    };
    // An error is always followed by a close event, which decides what happens next.
    socket.onerror = () => {};
  }

  _receive(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (!message || typeof message !== "object" || typeof message.type !== "string") return;
    if (typeof message.client_id === "string") this.pending.delete(message.client_id);
    const seq = typeof message.seq === "number" ? message.seq : 0;
    if (message.type === "init") {
      this.lastSeq = seq;
    } else if (seq > 0) {
      if (this.lastSeq !== null && seq <= this.lastSeq) return;
      this.lastSeq = seq;
    }
    this.onEvent(message);
    if (seq > 0 || message.type === "init") this._applied();
  }

  /** A logged event (or init) was applied: ack now, or soon. */
  _applied() {
    this._unacked += 1;
    if (this._unacked >= this.ackEvery) {
      this._sendAck();
    } else if (this._ackTimer === null) {
      this._ackTimer = setTimeout(() => this._sendAck(), this.ackIntervalMs);
    }
  }

  _sendAck() {
    clearTimeout(this._ackTimer);
    this._ackTimer = null;
    if (this.lastSeq !== null && this.send({ type: "ack", seq: this.lastSeq })) {
      this._unacked = 0;
    }
  }

  _resetAcks() {
    clearTimeout(this._ackTimer);
    this._ackTimer = null;
    this._unacked = 0;
  }

  _scheduleRetry(code) {
    if (this.stopped) return;
    if (this.retries >= this.maxRetries) {
      this._giveUp("Could not reconnect.");
      return;
    }
    const delayMs = backoffDelay(this.retries, this.baseDelayMs, this.maxDelayMs);
    this.retries += 1;
    this._setState("reconnecting", { attempt: this.retries, delayMs, code });
    this._retryTimer = setTimeout(() => this._connect(), delayMs);
  }

  _giveUp(reason) {
    this.stopped = true;
    this._setState("disconnected", { reason });
  }

  _startPing() {
    this._stopPing();
    this._pingTimer = setInterval(() => {
      if (Date.now() - this._lastHeard > 3 * this.pingIntervalMs) {
        // Nothing heard for too long: the network dropped without a close. Abandon the
        // socket (its close handshake could hang) and reconnect now.
        const socket = this.socket;
        if (socket) {
          this._detach(socket);
          socket.close(4000, "keep-alive timeout");
          this.socket = null;
        }
        this._stopPing();
        this._scheduleRetry(null);
        return;
      }
      this.send({ type: "ping" });
    }, this.pingIntervalMs);
  }

  _stopPing() {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
  }

  _detach(socket) {
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
  }
}
