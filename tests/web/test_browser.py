"""The browser page in headless Chromium, against the real Serve app.

What is checked: signing up, out and in through the page; the transcript renders untrusted
text as text; the WebSocket client's cursor, duplicate dropping, backoff and retry limit
(the server side of those is played by a Playwright WebSocket route, so the close codes
and duplicated frames are exactly the ones under test); and the whole prompt flow with a
real session, sandbox, OpenCode and the scripted model, including a dropped socket.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

from playwright.async_api import Page, WebSocketRoute, expect

from llm.scripted import ScriptedModelServer
from schemas.llm import Script, ScriptRule, ScriptStep, ScriptToolCall
from tests.fixtures.llm import use_script
from tests.web.conftest import BrowserPage

PASSWORD = "correct horse battery staple"
WS_URL = re.compile(r"/api/sessions/[^/]+/ws\?")
DISCONNECTED = "() => window.__states.at(-1)[0] === 'disconnected'"


def _email() -> str:
    return f"{uuid.uuid4().hex[:12]}@example.test"


async def _sign_up_in_page(page: Page, name: str, email: str) -> None:
    await page.get_by_role("button", name="Create one").click()
    await page.get_by_label("Name").fill(name)
    await page.locator("#sign-up-form").get_by_label("Email").fill(email)
    await page.locator("#sign-up-form").get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.locator("#account-name")).to_have_text(email)


async def _sign_up_by_api(page: Page) -> None:
    """A signed-in context (the context's request client shares the page's cookies)."""
    payload = {"email": _email(), "password": PASSWORD, "name": "Web Tester"}
    resp = await page.request.post("/api/auth/sign-up", data=payload)
    assert resp.status == 201, await resp.text()


async def test_sign_up_sign_out_and_sign_in(web: BrowserPage) -> None:
    page = web.page
    email = _email()
    await page.goto("/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    await _sign_up_in_page(page, "Page User", email)
    await expect(page.locator("#sessions-view")).to_be_visible()
    await expect(page.locator("#auth-view")).to_be_hidden()

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.locator("#account-name")).to_have_text("")
    await expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    me = await page.request.get("/api/auth/me")
    assert me.status == 401

    # A wrong password shows the server's message and keeps the user signed out.
    await page.locator("#sign-in-form").get_by_label("Email").fill(email)
    await page.locator("#sign-in-form").get_by_label("Password").fill("wrong password!")
    await page.locator("#sign-in-form").get_by_role("button", name="Sign in").click()
    await expect(page.locator("#auth-error")).to_have_text("invalid email or password")

    await page.locator("#sign-in-form").get_by_label("Password").fill(PASSWORD)
    await page.locator("#sign-in-form").get_by_role("button", name="Sign in").click()
    await expect(page.locator("#account-name")).to_have_text(email)
    # A reload keeps the session (cookie) and lands on the signed-in view.
    await page.reload()
    await expect(page.locator("#account-name")).to_have_text(email)
    await expect(page.locator("#sessions-view")).to_be_visible()


_TRANSCRIPT_SCRIPT = """
async () => {
  const { TranscriptView } = await import("/static/transcript.js");
  const list = document.createElement("ol");
  document.body.append(list);
  const view = new TranscriptView(list);
  const evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
  view.reset([{ id: "u1", role: "user", content: evil, is_complete: true,
                created_at: "2026-01-01T00:00:00Z",
                parts: [{ type: "text", id: "u1p", text: evil }] }]);
  view.apply({ type: "message", seq: 2, message: { id: "a1", role: "assistant",
               is_complete: false, created_at: "2026-01-01T00:00:01Z", parts: [] } });
  view.apply({ type: "token", seq: 3, message_id: "a1", part_id: "p1", token: "Hi <b>" });
  view.apply({ type: "token", seq: 4, message_id: "a1", part_id: "p1", token: "there</b>" });
  const busyWhileStreaming = list.getAttribute("aria-busy");
  view.apply({ type: "tool_start", seq: 5, message_id: "a1", part_id: "t1",
               tool_call_id: "c1", tool: "bash", args: { command: evil } });
  const runningLabel = list.querySelector(".tool-status").textContent;
  view.apply({ type: "tool_end", seq: 6, message_id: "a1", part_id: "t1", tool_call_id: "c1",
               tool: "bash", result: "<i>out</i>", status: "completed", duration_ms: 1200 });
  view.apply({ type: "text_part_complete", seq: 7, message_id: "a1", part_id: "p1",
               text: "Hi <b>there</b>!" });
  view.apply({ type: "message_complete", seq: 8, message_id: "a1" });
  const tool = list.querySelector("details.part-tool");
  return {
    elements: list.querySelectorAll("img, script, b, i").length,
    pwned: window.__pwned ?? null,
    userText: list.querySelector('[data-message-id="u1"] .part-text').textContent,
    agentText: list.querySelector('[data-message-id="a1"] .part-text').textContent,
    busyWhileStreaming,
    busyAfter: list.getAttribute("aria-busy"),
    runningLabel,
    toolOpen: tool.open,
    toolStatus: tool.dataset.status,
    toolLabel: tool.querySelector(".tool-status").textContent,
    toolArgs: JSON.parse(tool.querySelector(".tool-args").textContent),
    toolResult: tool.querySelector(".tool-result").textContent,
    tools: list.querySelectorAll("details.part-tool").length,
  };
}
"""


async def test_transcript_renders_untrusted_text_as_text(web: BrowserPage) -> None:
    page = web.page
    await page.goto("/")
    result = await page.evaluate(_TRANSCRIPT_SCRIPT)
    evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    assert result["elements"] == 0
    assert result["pwned"] is None
    assert result["userText"] == evil
    assert result["agentText"] == "Hi <b>there</b>!"
    assert result["busyWhileStreaming"] == "true"
    assert result["busyAfter"] == "false"
    assert result["runningLabel"] == "running…"
    assert result["toolOpen"] is False  # collapsed
    assert result["toolStatus"] == "completed"
    assert result["toolLabel"] == "done (1.2 s)"
    assert result["toolArgs"] == {"command": evil}
    assert result["toolResult"] == "<i>out</i>"
    assert result["tools"] == 1
    assert web.errors == [], web.errors


_CONNECT_SCRIPT = """
async ([options, sessionId]) => {
  const { SessionConnection } = await import("/static/connection.js");
  window.__events = [];
  window.__states = [];
  window.__conn = new SessionConnection(sessionId, {
    ...options,
    onEvent: (e) => window.__events.push(e),
    onState: (s, d) => window.__states.push([s, d]),
  });
  window.__conn.start();
}
"""


def _frame(**fields: Any) -> str:
    return json.dumps(fields)


async def test_reconnect_resumes_after_last_seq_and_drops_duplicates(web: BrowserPage) -> None:
    page = web.page
    await page.goto("/")
    await _sign_up_by_api(page)
    urls: list[str] = []
    token_requests: list[str] = []
    page.on(
        "request",
        lambda r: token_requests.append(r.url) if r.url.endswith("/api/auth/ws-token") else None,
    )

    async def server(ws: WebSocketRoute) -> None:
        urls.append(ws.url)
        if len(urls) == 1:
            ws.send(_frame(type="init", seq=5, messages=[]))
            ws.send(_frame(type="token", seq=6, message_id="m", part_id="p", token="a"))
            ws.send(_frame(type="token", seq=7, message_id="m", part_id="p", token="b"))
            await ws.close(code=4008, reason="slow consumer")
        else:
            # The replay overlaps what the client already has: it must drop seq 6 and 7.
            ws.send(_frame(type="token", seq=6, message_id="m", part_id="p", token="a"))
            ws.send(_frame(type="token", seq=7, message_id="m", part_id="p", token="b"))
            ws.send(_frame(type="token", seq=8, message_id="m", part_id="p", token="c"))
            ws.send(_frame(type="pong", seq=0))
            ws.send(_frame(type="token", seq=8, message_id="m", part_id="p", token="c"))

    await page.route_web_socket(WS_URL, server)
    session_id = str(uuid.uuid4())
    await page.evaluate(_CONNECT_SCRIPT, [{}, session_id])
    await page.wait_for_function("() => window.__events.length >= 5", timeout=10_000)
    await asyncio.sleep(0.2)  # nothing else may arrive
    events = await page.evaluate("window.__events")
    states = await page.evaluate("window.__states")

    assert [(e["type"], e["seq"]) for e in events] == [
        ("init", 5),
        ("token", 6),
        ("token", 7),
        ("token", 8),
        ("pong", 0),
    ]
    assert "".join(e.get("token", "") for e in events) == "abc"
    assert len(urls) == 2
    assert f"/api/sessions/{session_id}/ws?" in urls[0]
    assert "after_seq" not in urls[0]  # the first connect asks for init
    assert "after_seq=7" in urls[1]
    assert all(re.search(r"[?&]token=[\w.-]+", u) for u in urls)
    assert len(token_requests) == 2  # a fresh token for every connection
    assert [s for s, _ in states] == ["connecting", "connected", "reconnecting", "connected"]
    assert states[2][1] == {"attempt": 1, "delayMs": 1000, "code": 4008}
    assert await page.evaluate("window.__conn.lastSeq") == 8
    await page.evaluate("window.__conn.stop()")


async def test_backoff_doubles_to_the_cap_and_gives_up_after_ten_retries(
    web: BrowserPage,
) -> None:
    page = web.page
    await page.goto("/")
    await _sign_up_by_api(page)
    delays = await page.evaluate(
        """async () => {
          const { backoffDelay } = await import("/static/connection.js");
          return Array.from({ length: 10 }, (_, i) => backoffDelay(i));
        }"""
    )
    assert delays == [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 30000]

    connects = 0

    async def refuse(ws: WebSocketRoute) -> None:
        # Accepts and drops every connection without a word (a crashing server).
        nonlocal connects
        connects += 1
        await ws.close(code=1011, reason="internal error")

    await page.route_web_socket(WS_URL, refuse)
    options = {"baseDelayMs": 5, "maxDelayMs": 40}
    await page.evaluate(_CONNECT_SCRIPT, [options, str(uuid.uuid4())])
    await page.wait_for_function(DISCONNECTED, timeout=10_000)
    states = await page.evaluate("window.__states")
    retries = [d for s, d in states if s == "reconnecting"]
    assert [d["delayMs"] for d in retries] == [5, 10, 20, 40, 40, 40, 40, 40, 40, 40]
    assert [d["attempt"] for d in retries] == list(range(1, 11))
    assert states[-1] == ["disconnected", {"reason": "Could not reconnect."}]
    assert connects == 11  # the first connection and ten retries


async def test_no_retry_after_the_session_is_refused(web: BrowserPage) -> None:
    page = web.page
    await page.goto("/")
    await _sign_up_by_api(page)
    connects = 0

    async def not_found(ws: WebSocketRoute) -> None:
        nonlocal connects
        connects += 1
        await ws.close(code=4404, reason="session not found")

    await page.route_web_socket(WS_URL, not_found)
    await page.evaluate(_CONNECT_SCRIPT, [{"baseDelayMs": 5}, str(uuid.uuid4())])
    await page.wait_for_function(DISCONNECTED)
    await asyncio.sleep(0.2)
    assert connects == 1
    states = await page.evaluate("window.__states")
    assert states[-1] == ["disconnected", {"reason": "session not found"}]


# --- the whole flow: real session, local sandbox, OpenCode, scripted model ---------------------

ANSWER = (
    "The tool said hello, so the workspace is ready. "
    "Streaming continues across a dropped socket without repeating a single word."
)
TOOL_OUTPUT = "tool-says-hi"
_SCRIPT = Script(
    rules=(
        ScriptRule(
            when_user="greet the tool",
            steps=(
                ScriptStep(
                    tool_calls=(
                        ScriptToolCall(
                            name="bash",
                            arguments={"command": f"echo {TOOL_OUTPUT}", "description": "Say hi"},
                        ),
                    )
                ),
                # Slow enough (~3 s) that the drop lands mid-stream and the reconnect too.
                ScriptStep(text=ANSWER, chunk_chars=4, delay_ms=100),
            ),
        ),
        ScriptRule(
            when_user="ramble on",
            steps=(ScriptStep(text="word " * 200, chunk_chars=5, delay_ms=150),),
        ),
    )
)
E2E_TIMEOUT_MS = 120_000
_WATCH_CONNECTION = """
document.addEventListener("DOMContentLoaded", () => {
  window.__connStates = [];
  const node = document.getElementById("connection");
  new MutationObserver(() => {
    if (window.__connStates.at(-1) !== node.dataset.state) {
      window.__connStates.push(node.dataset.state);
    }
  }).observe(node, { attributes: true, attributeFilter: ["data-state"] });
  // Every text the agent's messages ever showed, to prove no token was applied twice.
  window.__agentTexts = [];
  const transcript = document.getElementById("transcript");
  new MutationObserver(() => {
    const text = Array.from(transcript.querySelectorAll(".message-assistant .part-text"))
      .map((n) => n.textContent).join("");
    if (window.__agentTexts.at(-1) !== text) window.__agentTexts.push(text);
  }).observe(transcript, { subtree: true, childList: true, characterData: true });
});
"""


class Relay:
    """Sits between the page and the real session WebSocket: records what the server sent,
    drops the first socket with 4008 after a few streamed tokens, and replays a stale frame
    to the page on the next socket (the page must ignore it)."""

    def __init__(self, drop_after_tokens: int = 3) -> None:
        self.drop_after_tokens = drop_after_tokens
        self.urls: list[str] = []
        self.frames: list[list[dict[str, Any]]] = []
        self.session_id: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def handle(self, ws: WebSocketRoute) -> None:
        """One page socket."""
        match = re.search(r"/api/sessions/([^/]+)/ws", ws.url)
        assert match is not None
        self.session_id = match.group(1)
        index = len(self.urls)
        self.urls.append(ws.url)
        self.frames.append([])
        if index == 1:
            stale = [f for f in self.frames[0] if f["type"] == "token"][-1]
            ws.send(json.dumps(stale))
        server = ws.connect_to_server()
        ws.on_message(server.send)

        def from_server(message: str | bytes) -> None:
            if index == 0 and self._tasks:
                return  # dropped: the page must not get what follows on this socket
            frame = json.loads(message)
            self.frames[index].append(frame)
            ws.send(message)
            tokens = sum(1 for f in self.frames[index] if f["type"] == "token")
            if index == 0 and frame["type"] == "token" and tokens == self.drop_after_tokens:
                self._tasks.append(asyncio.create_task(self._drop(ws, server)))

        server.on_message(from_server)

    async def _drop(self, page_side: WebSocketRoute, server_side: WebSocketRoute) -> None:
        await page_side.close(code=4008, reason="slow consumer, reconnect with after_seq")
        await server_side.close()


async def test_prompt_streams_text_and_a_tool_call_across_a_dropped_socket(
    web: BrowserPage, scripted_model: ScriptedModelServer
) -> None:
    page = web.page
    page.set_default_timeout(E2E_TIMEOUT_MS)
    await page.add_init_script(_WATCH_CONNECTION)
    # Every session reaches the run's scripted model (settings.llm_base_url).
    with use_script(scripted_model, _SCRIPT):
        relay = Relay()
        await page.route_web_socket(WS_URL, relay.handle)
        await page.goto("/")
        await _sign_up_in_page(page, "Stream Watcher", _email())
        try:
            await _prompt_flow(page, relay)
        finally:
            if relay.session_id is not None:
                resp = await page.request.delete(f"/api/sessions/{relay.session_id}")
                assert resp.status == 204, await resp.text()
    assert web.errors == [], web.errors


async def _prompt_flow(page: Page, relay: Relay) -> None:
    await page.get_by_label("Title").fill("Browser <b>E2E</b>")
    await page.get_by_role("button", name="Create session").click()
    await expect(page.locator("#session-title")).to_have_text("Browser <b>E2E</b>")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")

    await page.get_by_label("Message the agent").fill("please greet the tool")
    await page.get_by_role("button", name="Send").click()
    await expect(page.get_by_label("Message the agent")).to_have_value("")

    user = page.locator(".message-user .part-text")
    await expect(user).to_have_text(["please greet the tool"])
    tool = page.locator("details.part-tool")
    await expect(tool).to_have_count(1, timeout=E2E_TIMEOUT_MS)
    await expect(tool.locator(".tool-name")).to_have_text("bash")
    await expect(tool).to_have_attribute("data-status", "completed", timeout=E2E_TIMEOUT_MS)
    await expect(tool.locator(".tool-result")).to_contain_text(TOOL_OUTPUT)
    assert not await tool.evaluate("(node) => node.open")  # collapsed

    # The first socket is dropped mid-stream; the page reconnects and the text completes once.
    agent_text = page.locator(".message-assistant .part-text")
    await expect(agent_text).to_have_text([ANSWER], timeout=E2E_TIMEOUT_MS)
    await expect(page.locator(".message.streaming")).to_have_count(0, timeout=E2E_TIMEOUT_MS)
    await expect(page.locator("#transcript")).to_have_attribute("aria-busy", "false")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    await expect(page.locator("#session-status")).to_have_text("Running")

    assert len(relay.urls) == 2, relay.urls
    before_drop = [f["seq"] for f in relay.frames[0] if f.get("seq", 0) > 0]
    assert f"after_seq={before_drop[-1]}" in relay.urls[1]
    assert "after_seq" not in relay.urls[0]
    assert relay.frames[0][0]["type"] == "init"
    # Resumed after the cursor: no init, and nothing the page already had.
    resumed = [f for f in relay.frames[1] if f.get("seq", 0) > 0]
    assert resumed and resumed[0]["type"] != "init"
    assert min(f["seq"] for f in resumed) > before_drop[-1]
    assert sum(f["type"] == "token" for f in relay.frames[0]) == 3
    texts: list[str] = await page.evaluate("window.__agentTexts")
    assert texts[-1] == ANSWER
    assert all(ANSWER.startswith(text) for text in texts), texts
    assert len(texts) > 5  # it was streamed, not shown at once
    states = await page.evaluate("window.__connStates")
    assert states[-3:] == ["connected", "reconnecting", "connected"], states

    # Cancel is enabled while the agent works, and stops it.
    cancel = page.get_by_role("button", name="Cancel")
    await expect(cancel).to_be_disabled()
    await page.get_by_label("Message the agent").fill("ramble on")
    await page.get_by_role("button", name="Send").click()
    await expect(agent_text.nth(1)).to_contain_text("word word", timeout=E2E_TIMEOUT_MS)
    await expect(cancel).to_be_enabled()
    await cancel.click()
    await expect(page.locator(".message.streaming")).to_have_count(0, timeout=E2E_TIMEOUT_MS)
    await expect(cancel).to_be_disabled()
    await expect(page.locator(".message-cancelled")).to_have_text(["Cancelled."])
    rambled = await agent_text.nth(1).text_content()
    assert rambled is not None and len(rambled) < len("word " * 200)

    # Back to the list: the session is there, its title shown as text.
    await page.get_by_role("link", name="← Sessions").click()
    item = page.locator("#session-list li")
    await expect(item).to_have_count(1)
    await expect(item.locator(".session-title")).to_have_text("Browser <b>E2E</b>")
    await expect(item.locator(".badge")).to_have_text("Running")


async def test_client_acks_every_n_events_or_after_the_interval(web: BrowserPage) -> None:
    page = web.page
    await page.goto("/")
    await _sign_up_by_api(page)
    received: list[dict[str, Any]] = []
    sockets: list[WebSocketRoute] = []

    async def server(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        ws.on_message(lambda m: received.append(json.loads(m)))
        ws.send(_frame(type="init", seq=5, messages=[]))
        for seq in (6, 7, 8):
            ws.send(_frame(type="token", seq=seq, message_id="m", part_id="p", token="x"))
        ws.send(_frame(type="pong", seq=0))  # a reply: not counted, not acked

    await page.route_web_socket(WS_URL, server)
    options = {"ackEvery": 3, "ackIntervalMs": 300, "pingIntervalMs": 60_000}
    await page.evaluate(_CONNECT_SCRIPT, [options, str(uuid.uuid4())])
    await page.wait_for_function("() => window.__events.length >= 5", timeout=10_000)
    await asyncio.sleep(0.1)
    # init, 6, 7 make three: acked at once; 8 waits for the interval.
    assert received == [{"type": "ack", "seq": 7}]
    await asyncio.sleep(0.5)
    assert received == [{"type": "ack", "seq": 7}, {"type": "ack", "seq": 8}]
    await asyncio.sleep(0.5)
    assert len(received) == 2  # nothing new: no more acks
    await page.evaluate("window.__conn.stop()")
    assert web.errors == [], web.errors
