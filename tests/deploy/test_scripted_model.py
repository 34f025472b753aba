"""The stack's default model: the scripted model process with the demo script."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from deploy import stack
from deploy import state as files
from deploy.net import free_port, port_free
from deploy.proc import running
from deploy.scripted_model import DEMO_SCRIPT, EmbeddedScriptedModel, stop_leftover
from llm.scripted import choose_answer, load_script
from schemas.llm import ChatCompletionRequest


def _ask(base_url: str, text: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": text}]
    body = json.dumps({"model": "scripted", "messages": messages, "tools": [{}]}).encode()
    request = urllib.request.Request(
        base_url + "/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    message: dict[str, Any] = answer["choices"][0]["message"]
    return message


def test_demo_script_answers_honestly() -> None:
    script = load_script(DEMO_SCRIPT)

    def answer(text: str, steps_done: int = 0) -> Any:
        messages: list[dict[str, Any]] = [{"role": "user", "content": text}]
        messages += [{"role": "assistant", "content": ""}] * steps_done
        return choose_answer(script, ChatCompletionRequest(messages=messages, tools=[{}])).step

    assert "scripted demo model" in (answer("hello there").text or "")
    assert "scripted demo model" in (answer("Hello!").text or "")
    listing = answer("please list files")
    assert listing.tool_calls is not None
    assert listing.tool_calls[0].name == "bash"
    assert listing.tool_calls[0].arguments["command"] == "ls -la"
    assert "ls -la" in (answer("please list files", 1).text or "")
    fallback = answer("write me a compiler").text or ""
    for variable in ("WARREN_LLM_BASE_URL", "WARREN_LLM_API_KEY", "WARREN_LLM_MODEL"):
        assert variable in fallback
    assert "not an LLM" in fallback


def test_starts_answers_and_stops(tmp_path: Path) -> None:
    model = EmbeddedScriptedModel(free_port(), tmp_path / "model.log")
    model.start()
    pid = model.pid
    try:
        assert pid is not None and running(pid, "llm.scripted")
        assert model.base_url == f"http://127.0.0.1:{model.port}/v1"
        assert _ask(model.base_url, "hello")["content"].startswith("Hello!")
        call = _ask(model.base_url, "list files")["tool_calls"][0]["function"]
        assert call["name"] == "bash" and json.loads(call["arguments"])["command"] == "ls -la"
    finally:
        model.stop()
    assert not running(pid) and model.pid is None
    assert port_free(model.port)


def test_a_dead_runners_model_is_stopped_by_pid_and_port(tmp_path: Path) -> None:
    model = EmbeddedScriptedModel(free_port(), tmp_path / "model.log")
    model.start()
    pid = model.pid
    assert pid is not None
    try:
        stop_leftover(pid, model.port + 1)  # another port: not this server, left alone
        assert running(pid)
        stop_leftover(pid, model.port)
        assert not running(pid)
    finally:
        model.stop()


def test_stack_starts_the_model_only_without_a_base_url(tmp_path: Path) -> None:
    paths = files.Paths(tmp_path)
    ports = files.StackPorts(scripted_model=free_port())
    external = stack.Stack(paths, ports, {"WARREN_LLM_BASE_URL": "http://127.0.0.1:9/v1"})
    external.start_model()
    assert external.model is None
    assert external.env == {"WARREN_LLM_BASE_URL": "http://127.0.0.1:9/v1"}

    embedded = stack.Stack(paths, ports, {"WARREN_LLM_BASE_URL": ""})
    embedded.start_model()
    try:
        assert embedded.model is not None
        assert embedded.env["WARREN_LLM_BASE_URL"] == f"http://127.0.0.1:{ports.scripted_model}/v1"
        assert embedded.env["WARREN_LLM_MODEL"] == "scripted"
        run = files.load(paths).running
        assert run is not None and run.scripted_model == f"127.0.0.1:{ports.scripted_model}"
        assert run.scripted_model_pid == embedded.model.pid
    finally:
        embedded.shutdown()
    assert port_free(ports.scripted_model)
