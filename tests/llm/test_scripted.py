"""The scripted model over real HTTP: streaming format, step selection, runtime script, log."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from deploy.net import free_port
from llm.scripted import ScriptedModelServer, load_script, run_scripted_model
from schemas.llm import Script, ScriptRule, ScriptStep, ScriptToolCall

REPO = Path(__file__).resolve().parents[2]

SCRIPT = Script(
    rules=(
        ScriptRule(
            when_user="write a file",
            steps=(
                ScriptStep(
                    tool_calls=(
                        ScriptToolCall(
                            name="bash", arguments={"command": "echo hello > out.txt", "n": 1}
                        ),
                        ScriptToolCall(name="read", arguments={"filePath": "out.txt"}),
                    )
                ),
                ScriptStep(text="I wrote out.txt and read it back.", chunk_chars=5),
            ),
        ),
        ScriptRule(when_user="greet", steps=(ScriptStep(text="Hello there!", chunk_chars=4),)),
        ScriptRule(steps=(ScriptStep(text="fallback rule"),)),
    ),
    final_text="All done.",
    title="A scripted title",
)
TOOLS = [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}]


@pytest.fixture(scope="module")
async def model() -> AsyncIterator[ScriptedModelServer]:
    """One scripted model for the module; each test sets the script it needs."""
    async with run_scripted_model(SCRIPT) as server:
        yield server


@pytest.fixture
async def http(model: ScriptedModelServer) -> AsyncIterator[aiohttp.ClientSession]:
    """A client on the scripted model; resets the script before each test."""
    model.model.set_script(SCRIPT)
    async with aiohttp.ClientSession(model.url) as session:
        yield session


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


async def stream(http: aiohttp.ClientSession, messages: list[dict[str, Any]]) -> list[Any]:
    """POST a streaming request; return the decoded ``data:`` payloads ("[DONE]" kept as is)."""
    body = {"model": "scripted", "stream": True, "messages": messages, "tools": TOOLS}
    async with http.post("/v1/chat/completions", json=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = await response.text()
    events = [block for block in raw.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in events)
    payloads = [block.removeprefix("data: ") for block in events]
    return [p if p == "[DONE]" else json.loads(p) for p in payloads]


def text_of(chunks: list[Any]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in chunks
        if isinstance(c, dict) and c["choices"]
    )


async def test_text_stream_has_chunks_finish_usage_and_done(http: aiohttp.ClientSession) -> None:
    chunks = await stream(http, [user("please greet me")])
    assert chunks[-1] == "[DONE]"
    usage_chunk = chunks[-2]
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[1:-3]]
    assert contents == ["Hell", "o th", "ere!"]
    assert text_of(chunks) == "Hello there!"
    finish = chunks[-3]["choices"][0]
    assert finish["finish_reason"] == "stop" and finish["delta"] == {}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks[:-1])
    assert len({c["id"] for c in chunks[:-1]}) == 1


async def test_tool_calls_stream_as_fragments_with_deterministic_ids(
    http: aiohttp.ClientSession,
) -> None:
    chunks = await stream(http, [user("please write a file now")])
    assert chunks[-1] == "[DONE]"
    assert chunks[-2]["usage"]["completion_tokens"] > 0
    assert chunks[-3]["choices"][0]["finish_reason"] == "tool_calls"
    calls: dict[int, dict[str, Any]] = {}
    fragments = 0
    for chunk in chunks[:-3]:
        for fragment in chunk["choices"][0]["delta"].get("tool_calls") or []:
            fragments += 1
            call = calls.setdefault(fragment["index"], {"id": None, "name": "", "arguments": ""})
            if "id" in fragment:
                call["id"] = fragment["id"]
                assert fragment["type"] == "function"
            call["name"] += fragment["function"].get("name") or ""
            call["arguments"] += fragment["function"].get("arguments") or ""
    assert fragments > len(calls) == 2  # arguments arrive in several fragments
    assert calls[0]["name"] == "bash"
    assert json.loads(calls[0]["arguments"]) == {"command": "echo hello > out.txt", "n": 1}
    assert calls[1]["name"] == "read"
    assert json.loads(calls[1]["arguments"]) == {"filePath": "out.txt"}
    ids = [calls[0]["id"], calls[1]["id"]]
    assert all(i.startswith("call_") for i in ids) and ids[0] != ids[1]
    again = await stream(http, [user("please write a file now")])
    again_ids = [
        f["id"]
        for c in again[:-3]
        for f in c["choices"][0]["delta"].get("tool_calls") or []
        if "id" in f
    ]
    assert again_ids == ids
    other = await stream(http, [user("earlier"), user("please write a file now")])
    assert calls[0]["id"] not in json.dumps(other)


async def test_step_is_the_number_of_assistant_messages_after_the_last_user(
    http: aiohttp.ClientSession, model: ScriptedModelServer
) -> None:
    since = model.model.log().next_index
    first = await stream(http, [user("write a file")])
    call_id = next(
        f["id"] for c in first[:-3] for f in c["choices"][0]["delta"].get("tool_calls") or []
    )
    history = [
        user("write a file"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "bash", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "ok"},
    ]
    assert text_of(await stream(http, history)) == "I wrote out.txt and read it back."
    done = [*history, {"role": "assistant", "content": "I wrote out.txt and read it back."}]
    assert text_of(await stream(http, done)) == "All done."
    # A new user message starts the rule over; the first matching rule wins.
    assert text_of(await stream(http, [*done, user("greet and write a file")])) == ""
    assert text_of(await stream(http, [*done, user("something else")])) == "fallback rule"
    log = model.model.requests(since)
    assert [(r.rule_index, r.step_index) for r in log] == [(0, 0), (0, 1), (0, 2), (0, 0), (2, 0)]
    assert log[0].tool_call_ids == [call_id, log[0].tool_call_ids[1]]
    assert log[1].messages == history
    assert log[0].tool_names == ["bash"]


async def test_content_parts_are_matched_like_plain_text(http: aiohttp.ClientSession) -> None:
    parts = {
        "role": "user",
        "content": [{"type": "text", "text": "please"}, {"type": "text", "text": "greet"}],
    }
    assert text_of(await stream(http, [parts])) == "Hello there!"


async def test_title_requests_get_the_title_and_use_no_step(
    http: aiohttp.ClientSession, model: ScriptedModelServer
) -> None:
    since = model.model.log().next_index
    body = {
        "model": "scripted",
        "stream": True,
        "messages": [
            {
                "role": "system",
                "content": "You are a title generator. You output ONLY a thread title.",
            },
            user("please greet me"),
        ],
    }
    async with http.post("/v1/chat/completions", json=body) as response:
        raw = await response.text()
    chunks = [json.loads(b[6:]) for b in raw.split("\n\n") if b and b != "data: [DONE]"]
    assert text_of(chunks) == "A scripted title"
    # Same system prompt but with tools offered: a normal request.
    assert text_of(await stream(http, body["messages"])) == "Hello there!"  # type: ignore[arg-type]
    kinds = [(r.kind, r.rule_index) for r in model.model.requests(since)]
    assert kinds == [("title", None), ("chat", 1)]


async def test_non_streaming_answers_are_whole_json(http: aiohttp.ClientSession) -> None:
    body = {"model": "m1", "stream": False, "messages": [user("greet")]}
    async with http.post("/v1/chat/completions", json=body) as response:
        assert response.status == 200
        answer = await response.json()
    assert answer["object"] == "chat.completion" and answer["model"] == "m1"
    assert answer["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hello there!",
        "tool_calls": None,
    }
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["total_tokens"] > 0
    body["messages"] = [user("write a file")]
    async with http.post("/v1/chat/completions", json=body) as response:
        answer = await response.json()
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    calls = choice["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["bash", "read"]
    assert json.loads(calls[1]["function"]["arguments"]) == {"filePath": "out.txt"}
    assert calls[0]["id"].startswith("call_") and calls[0]["type"] == "function"


async def test_delay_paces_each_chunk(
    http: aiohttp.ClientSession, model: ScriptedModelServer
) -> None:
    model.model.set_script(
        Script(rules=(ScriptRule(steps=(ScriptStep(text="abcdef", chunk_chars=2, delay_ms=60),)),))
    )
    started = time.monotonic()
    chunks = await stream(http, [user("x")])
    assert time.monotonic() - started >= 0.18  # three chunks, 60 ms before each
    assert text_of(chunks) == "abcdef"


async def test_script_can_be_replaced_and_requests_inspected_over_http(
    http: aiohttp.ClientSession,
) -> None:
    async with http.put("/script", data=b'{"rules": [{"steps": [{}]}]}') as response:
        assert response.status == 400
        assert "exactly one" in (await response.json())["error"]["message"]
    async with http.put("/script", data=b"not json") as response:
        assert response.status == 400
    new = {"rules": [{"when_user": "ping", "steps": [{"text": "pong"}]}], "final_text": "bye"}
    async with http.put("/script", json=new) as response:
        assert response.status == 200
    async with http.get("/script") as response:
        assert (await response.json())["rules"][0]["steps"][0]["text"] == "pong"
    async with http.get("/requests") as response:
        since = (await response.json())["next_index"]
    assert text_of(await stream(http, [user("ping")])) == "pong"
    assert text_of(await stream(http, [user("other")])) == "bye"
    async with http.get("/requests", params={"since": str(since)}) as response:
        log = await response.json()
    assert [r["messages"] for r in log["requests"]] == [[user("ping")], [user("other")]]
    assert log["requests"][0]["tools"] == TOOLS
    assert log["next_index"] == since + 2
    async with http.delete("/requests") as response:
        assert response.status == 204
    async with http.get("/requests") as response:
        cleared = await response.json()
    assert cleared == {"requests": [], "next_index": since + 2}
    async with http.get("/requests", params={"since": "x"}) as response:
        assert response.status == 400


async def test_models_lists_the_scripted_model(http: aiohttp.ClientSession) -> None:
    async with http.get("/v1/models") as response:
        assert await response.json() == {
            "object": "list",
            "data": [{"id": "scripted", "object": "model", "created": 0, "owned_by": "warren"}],
        }


def test_steps_need_exactly_one_of_text_or_tool_calls() -> None:
    with pytest.raises(msgspec.ValidationError, match="exactly one"):
        msgspec.json.decode(b'{"text": "a", "tool_calls": [{"name": "x"}]}', type=ScriptStep)
    with pytest.raises(msgspec.ValidationError, match="must not be empty"):
        msgspec.json.decode(b'{"tool_calls": []}', type=ScriptStep)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"text": "a", "chunk_chars": 0}', type=ScriptStep)


async def test_command_line_serves_a_script_file(tmp_path: Path) -> None:
    script_file = tmp_path / "script.json"
    script_file.write_text(json.dumps({"rules": [{"steps": [{"text": "from file"}]}]}))
    assert load_script(script_file).rules[0].steps[0].text == "from file"
    port = free_port()
    args = ["-m", "llm.scripted", "--port", str(port), "--script", str(script_file)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=REPO, stdout=asyncio.subprocess.PIPE, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert f"http://127.0.0.1:{port}/v1" in line.decode()
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            assert text_of(await stream(http, [user("hi")])) == "from file"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)


async def test_request_log_is_bounded() -> None:
    async with run_scripted_model(max_log=3) as server, aiohttp.ClientSession(server.url) as http:
        for i in range(5):
            await stream(http, [user(f"message {i}")])
        kept = server.model.requests()
        assert [r.index for r in kept] == [2, 3, 4]
        assert server.model.log(since=4).requests == kept[-1:]
