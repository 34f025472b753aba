"""OpenCode boot files and Warren's tools, with the real OpenCode binary and the scripted model.

One OpenCode server (setup mode, so all five Warren tools exist) is booted for the module and
shared by the end-to-end tests; each test sets the script it needs and uses its own session.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from deploy.net import free_port
from llm.scripted import ScriptedModelServer, run_scripted_model
from sandboxes.opencode import (
    OFFLINE_ENV,
    opencode_command,
    opencode_config,
    opencode_env,
    wait_ready,
    write_opencode_files,
)
from sandboxes.tool_plugins import parameters_schema, plugin_source, tool_names
from schemas.llm import Script, ScriptRule, ScriptStep, ScriptToolCall
from schemas.sandbox import AgentConfig, CreateSandboxOptions

REPO = Path(__file__).resolve().parents[2]
OPENCODE_BIN = REPO / "deploy" / "sandbox" / "node_modules" / ".bin" / "opencode"
SANDBOX_TOKEN = "sbx-token-7f3a"
LLM_KEY = "llm-virtual-key-91c2"
SESSION_ID = "sess_opencode_test"


def options(**overrides: Any) -> CreateSandboxOptions:
    base: dict[str, Any] = {
        "session_id": SESSION_ID,
        "agent_mode": "setup",
        "session_type": "setup",
        "agent_config": AgentConfig(
            model_id="scripted", base_url="http://127.0.0.1:9/v1", api_key=LLM_KEY
        ),
        "api_url": "http://127.0.0.1:9",
        "sandbox_token": SANDBOX_TOKEN,
    }
    base.update(overrides)
    return CreateSandboxOptions(**base)


# --------------------------------------------------------------------------------------------
# Boot files, without OpenCode
# --------------------------------------------------------------------------------------------


def test_config_points_at_the_model_and_allows_all_but_question() -> None:
    config = opencode_config(options())
    provider = config["provider"]["warren"]
    assert provider["npm"] == "@ai-sdk/openai-compatible"
    assert provider["options"] == {
        "baseURL": "http://127.0.0.1:9/v1",
        "apiKey": "{env:WARREN_LLM_API_KEY}",
    }
    assert config["model"] == config["small_model"] == "warren/scripted"
    assert provider["models"] == {"scripted": {"name": "scripted"}}
    assert (config["autoupdate"], config["share"], config["snapshot"], config["lsp"]) == (
        False,
        "disabled",
        False,
        False,
    )
    assert list(config["permission"].items()) == [("*", "allow"), ("question", "deny")]
    assert config["instructions"] == ["~/.config/opencode/warren/instructions.md"]
    assert LLM_KEY not in json.dumps(config)


def test_env_is_offline_with_fresh_home_and_what_the_tools_need(tmp_path: Path) -> None:
    env = opencode_env(options(), home=tmp_path)
    for name, value in OFFLINE_ENV.items():
        assert env[name] == value
    assert env["OPENCODE_DISABLE_MODELS_FETCH"] == "1" and env["npm_config_offline"] == "true"
    assert env["HOME"] == str(tmp_path)
    assert env["XDG_CONFIG_HOME"] == str(tmp_path / ".config")
    assert env["WARREN_API_URL"] == "http://127.0.0.1:9"
    assert env["WARREN_SESSION_ID"] == SESSION_ID
    assert env["WARREN_SANDBOX_TOKEN"] == SANDBOX_TOKEN
    assert env["WARREN_LLM_API_KEY"] == LLM_KEY


def test_command_serves_on_the_given_address() -> None:
    assert opencode_command("/bin/oc", 4096) == [
        "/bin/oc",
        "serve",
        "--port",
        "4096",
        "--hostname",
        "127.0.0.1",
    ]
    assert opencode_command("oc", 1, "0.0.0.0")[-1] == "0.0.0.0"


def test_files_per_mode(tmp_path: Path) -> None:
    home, workspace = tmp_path / "home", tmp_path / "ws"
    workspace.mkdir()
    trigger = {"run_id": "run_42", "completion_id": "cmp_42", "event": {"title": "Bug"}}
    write_opencode_files(
        options(agent_mode="automation", trigger_context=trigger), home=home, workspace=workspace
    )
    config = json.loads((home / ".config/opencode/opencode.json").read_text())
    assert config["model"] == "warren/scripted"
    instructions = (home / ".config/opencode/warren/instructions.md").read_text()
    assert "Warren" in instructions and "warren services" in instructions
    assert "warren env apply" in instructions and "warren actions" in instructions
    assert "automation_complete" in instructions and "`run_42`" in instructions
    assert "`cmp_42`" in instructions and ".warren/trigger-context.json" in instructions
    assert json.loads((workspace / ".warren/trigger-context.json").read_text()) == trigger
    assert (workspace / ".warren/.gitignore").read_text() == "*\n"
    plugin = (home / ".config/opencode/plugin/warren.js").read_text()
    assert "automation_complete" in plugin and "save_service_commands" not in plugin
    assert "import " not in plugin and "require(" not in plugin
    assert SANDBOX_TOKEN not in plugin and LLM_KEY not in plugin

    # Rewriting for a new session (restored snapshot): no stale trigger context.
    write_opencode_files(options(agent_mode="setup"), home=home, workspace=workspace)
    assert not (workspace / ".warren/trigger-context.json").exists()
    assert "save_service_commands" in (home / ".config/opencode/plugin/warren.js").read_text()
    setup = (home / ".config/opencode/warren/instructions.md").read_text()
    assert "Done — Save Snapshot" in setup and "Do not change the project's source" in setup

    write_opencode_files(options(agent_mode="scratch"), home=home, workspace=workspace)
    assert "no repository" in (home / ".config/opencode/warren/instructions.md").read_text()
    write_opencode_files(
        options(agent_mode="coding", system_prompt="Only say hi."), home=home, workspace=workspace
    )
    assert (home / ".config/opencode/warren/instructions.md").read_text() == "Only say hi.\n"


def test_tool_schemas_are_self_contained_with_optional_fields() -> None:
    assert tool_names("setup") == [
        "verify",
        "save_snapshot",
        "save_service_commands",
        "automation_complete",
        "request_env_variables",
    ]
    assert "save_service_commands" not in tool_names("coding")
    verify = parameters_schema("verify")
    assert verify["type"] == "object" and verify["required"] == []
    assert set(verify["properties"]) == {"folder"}
    commands = parameters_schema("save_service_commands")
    items = commands["properties"]["commands"]
    assert (items["minItems"], items["maxItems"]) == (1, 10)
    assert set(items["items"]["properties"]) == {"name", "command", "cwd", "workspacePath"}
    assert items["items"]["required"] == ["name", "command"]
    complete = parameters_schema("automation_complete")
    assert complete["required"] == ["run_id", "completion_id", "outcome"]
    assert set(complete["properties"]["outcome"]["enum"]) == {"succeeded", "failed", "needs_human"}
    env = parameters_schema("request_env_variables")
    key = env["properties"]["keys"]["items"]
    assert key["required"] == ["key", "type"]
    assert key["properties"]["suggestions"]["items"]["required"] == ["label"]
    for name in tool_names("setup"):
        assert "$ref" not in json.dumps(parameters_schema(name))
    assert plugin_source("coding").count("export ") == 1


# --------------------------------------------------------------------------------------------
# wait_ready
# --------------------------------------------------------------------------------------------


async def test_wait_ready_needs_200_and_survives_an_unanswered_first_connection() -> None:
    hits = 0
    release = asyncio.Event()

    async def health(request: web.Request) -> web.Response:
        nonlocal hits
        if request.headers.get("Authorization") != aiohttp.BasicAuth("opencode", "pw").encode():
            return web.json_response({"error": "unauthorized"}, status=401)
        hits += 1
        if hits == 1:
            await release.wait()  # the start-up race: accepted, not answered
        return web.json_response({"healthy": True})

    app = web.Application()
    app.router.add_get("/global/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(TimeoutError):  # a 401 is not ready
            await wait_ready(f"http://127.0.0.1:{port}", timeout=0.3)
        assert hits == 0
        waited = await wait_ready(f"http://127.0.0.1:{port}/", timeout=10, password="pw")
        assert 0.4 <= waited < 2.0 and hits == 2
    finally:
        release.set()
        await runner.cleanup()


async def test_wait_ready_times_out_when_nothing_listens() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await wait_ready(f"http://127.0.0.1:{free_port()}", timeout=0.6)
    assert time.monotonic() - started < 2


# --------------------------------------------------------------------------------------------
# Real OpenCode
# --------------------------------------------------------------------------------------------


@dataclass
class FakeWarren:
    """Warren's ``POST /api/sessions/{id}/tools/{name}``, recording every call."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    fail_first: dict[str, int] = field(default_factory=dict)
    """Tool → how many calls answer 503 before it succeeds."""
    reject: dict[str, int] = field(default_factory=dict)
    """Tool → a 4xx status it always answers."""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = request.match_info["name"]
        self.calls.append(
            {
                "session": request.match_info["session"],
                "tool": name,
                "authorization": request.headers.get("Authorization"),
                "body": body,
            }
        )
        if self.fail_first.get(name, 0) > 0:
            self.fail_first[name] -= 1
            return web.json_response({"error": {"code": "busy", "message": "busy"}}, status=503)
        if name in self.reject:
            error = {"code": "forbidden", "message": f"{name} is not allowed here"}
            return web.json_response({"error": error}, status=self.reject[name])
        result = f"{name} ok ({body['tool_call_id']})"
        return web.json_response({"success": True, "result": result})

    def of(self, tool: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["tool"] == tool]


@dataclass
class OpenCode:
    """A running ``opencode serve`` with its scripted model and fake Warren."""

    url: str
    model: ScriptedModelServer
    warren: FakeWarren
    workspace: Path
    http: aiohttp.ClientSession
    boot_seconds: float


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
    try:  # children of OpenCode (shells it ran) share the group
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
async def opencode(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OpenCode]:
    """One real OpenCode (setup mode) for the module, killed with its process group after."""
    assert OPENCODE_BIN.exists(), "OpenCode missing: run `npm install` in deploy/sandbox"
    root = tmp_path_factory.mktemp("opencode")
    home, workspace = root / "home", root / "workspace"
    home.mkdir()
    workspace.mkdir()
    warren = FakeWarren()
    app = web.Application()
    app.router.add_post("/api/sessions/{session}/tools/{name}", warren.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    warren_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with run_scripted_model() as model:
        opts = options(
            agent_config=AgentConfig(model_id="scripted", base_url=model.base_url, api_key=LLM_KEY),
            api_url=warren_url,
        )
        write_opencode_files(opts, home=home, workspace=workspace)
        port = free_port()
        env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **opencode_env(opts, home=home)}
        log = (root / "opencode.log").open("wb")
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *opencode_command(str(OPENCODE_BIN), port),
            cwd=workspace,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            await wait_ready(f"http://127.0.0.1:{port}", timeout=60)
            boot = time.monotonic() - started
            async with aiohttp.ClientSession() as http:
                yield OpenCode(f"http://127.0.0.1:{port}", model, warren, workspace, http, boot)
        finally:
            await _kill_group(proc)
            log.close()
            await runner.cleanup()
    assert await _group_gone(proc.pid), "OpenCode's process group outlived the test"


async def _group_gone(pgid: int) -> bool:
    for _ in range(40):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        await asyncio.sleep(0.05)
    return False


async def _sse(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    async for line in response.content:
        if line.startswith(b"data: "):
            yield json.loads(line[6:])


async def run_prompt(oc: OpenCode, text: str) -> tuple[str, list[dict[str, Any]]]:
    """Create a titled session, prompt it, follow events until idle; return (id, messages)."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=90)
    async with oc.http.get(f"{oc.url}/event", timeout=timeout) as events:
        stream = _sse(events)
        first = await anext(stream)
        assert first["type"] == "server.connected"
        async with oc.http.post(f"{oc.url}/session", json={"title": "test"}) as response:
            assert response.status == 200
            session_id = (await response.json())["id"]
        prompt = {"parts": [{"type": "text", "text": text}]}
        url = f"{oc.url}/session/{session_id}/prompt_async"
        async with oc.http.post(url, json=prompt) as response:
            assert response.status == 204
        busy = False
        async with asyncio.timeout(90):
            async for event in stream:
                kind, props = event["type"], event.get("properties", {})
                if props.get("sessionID") != session_id:
                    continue
                if kind in ("session.error", "permission.asked"):
                    raise AssertionError(f"OpenCode {kind}: {props}")
                if kind == "session.status" and props.get("status", {}).get("type") == "busy":
                    busy = True
                if kind == "session.idle" and busy:
                    break
    async with oc.http.get(f"{oc.url}/session/{session_id}/message") as response:
        messages = await response.json()
    return session_id, messages


def tool_parts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for m in messages for p in m["parts"] if p["type"] == "tool"]


async def test_bash_tool_writes_into_the_workspace(opencode: OpenCode) -> None:
    since = opencode.model.model.log().next_index
    opencode.model.model.set_script(
        Script(
            rules=(
                ScriptRule(
                    when_user="create out.txt",
                    steps=(
                        ScriptStep(
                            tool_calls=(
                                ScriptToolCall(
                                    name="bash",
                                    arguments={
                                        "command": "echo hello > out.txt",
                                        "description": "Write out.txt",
                                    },
                                ),
                            )
                        ),
                        ScriptStep(text="Created out.txt."),
                    ),
                ),
            )
        )
    )
    _, messages = await run_prompt(opencode, "please create out.txt")
    assert (opencode.workspace / "out.txt").read_text() == "hello\n"
    [part] = tool_parts(messages)
    assert part["tool"] == "bash" and part["state"]["status"] == "completed"
    log = opencode.model.model.requests(since)
    assert [r.kind for r in log] == ["chat", "chat"]  # titled session: no title request
    assert part["callID"] == log[0].tool_call_ids[0]
    tool_message = log[1].messages[-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == part["callID"]
    assert any(p.get("text") == "Created out.txt." for m in messages for p in m["parts"])
    # Warren's instructions and tools reach the model; the question tool is denied.
    system = log[0].messages[0]["content"]
    assert "Warren sandbox" in system and "save_service_commands" in system
    assert set(tool_names("setup")) <= set(log[0].tool_names)
    assert "question" not in log[0].tool_names


WARREN_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("verify", {"folder": ".warren/verification/"}),
    ("save_snapshot", {"message": "after setup"}),
    (
        "save_service_commands",
        {"commands": [{"name": "web", "command": "npm run dev", "cwd": "app"}]},
    ),
    (
        "automation_complete",
        {
            "run_id": "run_1",
            "completion_id": "cmp_1",
            "outcome": "succeeded",
            "summary_markdown": "All **good**",
            "citations": ["https://example.com/1"],
        },
    ),
    (
        "request_env_variables",
        {
            "keys": [
                {
                    "key": "API_TOKEN",
                    "description": "Token for the API",
                    "type": "secret",
                    "suggestions": [{"label": "From the dashboard"}],
                }
            ]
        },
    ),
]


async def test_each_warren_tool_calls_back_with_token_call_id_and_args(
    opencode: OpenCode,
) -> None:
    since = opencode.model.model.log().next_index
    first_call = len(opencode.warren.calls)
    calls = tuple(ScriptToolCall(name=n, arguments=a) for n, a in WARREN_CALLS)
    opencode.model.model.set_script(
        Script(
            rules=(
                ScriptRule(
                    when_user="use every warren tool",
                    steps=(ScriptStep(tool_calls=calls), ScriptStep(text="Used them all.")),
                ),
            )
        )
    )
    _, messages = await run_prompt(opencode, "use every warren tool")
    log = opencode.model.model.requests(since)
    ids = dict(zip([n for n, _ in WARREN_CALLS], log[0].tool_call_ids, strict=True))
    received = opencode.warren.calls[first_call:]
    assert sorted(c["tool"] for c in received) == sorted(ids)
    for name, args in WARREN_CALLS:
        [call] = [c for c in received if c["tool"] == name]
        assert call["session"] == SESSION_ID
        assert call["authorization"] == f"Bearer {SANDBOX_TOKEN}"
        expected_id = "cmp_1" if name == "automation_complete" else ids[name]
        assert call["body"] == {"tool_call_id": expected_id, "args": args}
    parts = {p["tool"]: p for p in tool_parts(messages)}
    for name in ids:
        state = parts[name]["state"]
        assert state["status"] == "completed"
        assert parts[name]["callID"] == ids[name]
        call_id = "cmp_1" if name == "automation_complete" else ids[name]
        assert state["output"] == f"{name} ok ({call_id})"
    # The model saw the full schemas (optional fields not required), not OpenCode's defaults.
    offered = {t["function"]["name"]: t["function"] for t in log[0].tools}
    for name in ids:
        assert offered[name]["parameters"] == parameters_schema(name)  # type: ignore[arg-type]


async def test_transient_failures_are_retried_with_the_same_call_id(opencode: OpenCode) -> None:
    since = opencode.model.model.log().next_index
    opencode.warren.fail_first["save_snapshot"] = 1
    opencode.warren.reject["verify"] = 403
    opencode.model.model.set_script(
        Script(
            rules=(
                ScriptRule(
                    when_user="snapshot with a hiccup",
                    steps=(
                        ScriptStep(
                            tool_calls=(
                                ScriptToolCall(name="save_snapshot", arguments={"message": "m"}),
                                ScriptToolCall(name="verify", arguments={}),
                            )
                        ),
                        ScriptStep(text="Saved."),
                    ),
                ),
            )
        )
    )
    first_call = len(opencode.warren.calls)
    try:
        _, messages = await run_prompt(opencode, "snapshot with a hiccup")
    finally:
        opencode.warren.reject.pop("verify", None)
        opencode.warren.fail_first.pop("save_snapshot", None)
    snapshot_id, verify_id = opencode.model.model.requests(since)[0].tool_call_ids
    received = opencode.warren.calls[first_call:]
    snapshots = [c["body"] for c in received if c["tool"] == "save_snapshot"]
    assert snapshots == [{"tool_call_id": snapshot_id, "args": {"message": "m"}}] * 2
    assert [c["body"]["tool_call_id"] for c in received if c["tool"] == "verify"] == [verify_id]
    parts = {p["tool"]: p["state"] for p in tool_parts(messages)}
    assert parts["save_snapshot"]["output"] == f"save_snapshot ok ({snapshot_id})"
    assert parts["verify"]["output"] == (
        "Error: Warren refused verify (HTTP 403): verify is not allowed here"
    )
