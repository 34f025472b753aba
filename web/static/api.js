// Calls to Warren's JSON API from the browser (same origin, session cookie).

/** An API answer that was not a success; `message` is the server's error message. */
export class ApiError extends Error {
  constructor(status, message, code = null, field = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/**
 * Send one request and return the parsed JSON body (null for an empty one).
 * Throws ApiError carrying Warren's `{"error": {code, message, field}}` when not 2xx.
 */
export async function api(method, path, body = undefined) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "The server could not be reached.");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = data && typeof data === "object" ? data.error : null;
    const message = error && typeof error.message === "string"
      ? error.message
      : `Request failed (${response.status}).`;
    throw new ApiError(response.status, message, error?.code ?? null, error?.field ?? null);
  }
  return data;
}

/** A fresh short-lived token for a session WebSocket. */
export async function fetchWsToken() {
  const data = await api("POST", "/api/auth/ws-token");
  return data.token;
}
