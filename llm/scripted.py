"""The scripted model: an OpenAI-compatible chat-completions server that is NOT an LLM.

It exists so that Warren's tests, benchmarks and offline demos can drive the real OpenCode agent
without any model provider. Every answer comes from a :class:`schemas.llm.Script` (plain data):

- The rule answering is the first whose ``when_user`` is a substring of the text of the LAST
  user message (an empty ``when_user`` matches anything).
- The step answered is the number of assistant messages after that last user message. The
  server therefore keeps no conversation state: a restart or a retried request gets the same
  answer. Past the rule's last step (or with no matching rule) it answers ``script.final_text``.
- A text step streams ``delta.content`` chunks and finishes with ``"stop"``; a tool-call step
  streams ``delta.tool_calls`` fragments and finishes with ``"tool_calls"``. Every stream ends
  with a usage chunk (tokens estimated at ~4 characters each) and ``data: [DONE]``.
- Tool-call ids are ``call_`` + a hash of the conversation up to the last user message, the step
  and the call's position: deterministic for a given request and unique within a conversation.
- Title requests get ``script.title``. A request is a title request when it offers no tools and
  one of its system messages mentions "title" (OpenCode's title agent says "You are a title
  generator. You output ONLY a thread title."); such requests never consume script steps.

Routes: ``POST /v1/chat/completions`` (SSE when ``stream`` is true, else JSON), ``GET /v1/models``,
``GET|PUT /script`` (swap the script at runtime), ``GET /requests?since=N`` (the last 1,000
requests received) and ``DELETE /requests``. No authentication: bind it to loopback.

Run it: ``python -m llm.scripted --port 8089 --script script.json``; in tests use
:func:`run_scripted_model`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from core.http_server import serving
from schemas.errors import ErrorBody, ErrorResponse
from schemas.llm import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    CompletionChoice,
    Delta,
    FinishReason,
    FunctionCall,
    ModelInfo,
    ModelList,
    RecordedRequest,
    RequestKind,
    RequestLog,
    Script,
    ScriptStep,
    ToolCall,
    Usage,
)

DEFAULT_MODEL_ID = "scripted"
DEFAULT_MAX_LOG = 1000
"""Requests kept for ``GET /requests``; older ones are dropped."""
_TITLE_RE = re.compile(r"\btitle\b", re.IGNORECASE)
# Tool-call arguments are streamed in fragments of this size (a real model streams them too).
_ARGUMENT_FRAGMENT_CHARS = 24


def load_script(path: str | Path) -> Script:
    """Read a :class:`Script` from a JSON file; raises ``msgspec.ValidationError`` if invalid."""
    return msgspec.json.decode(Path(path).read_bytes(), type=Script)


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        return "\n".join(texts)
    return ""


def is_title_request(request: ChatCompletionRequest) -> bool:
    """True for a tool-less request whose system prompt asks for a title (see module doc)."""
    if request.tools:
        return False
    return any(
        m.get("role") == "system" and _TITLE_RE.search(message_text(m)) for m in request.messages
    )


@dataclass(frozen=True)
class Answer:
    """What the script says to a request: text or tool calls, and which rule/step chose it."""

    kind: RequestKind
    rule_index: int | None
    step_index: int
    step: ScriptStep
    tool_call_ids: tuple[str, ...]


def _last_user_index(messages: list[dict[str, Any]]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return i
    return -1


def tool_call_id(conversation_prefix: list[dict[str, Any]], step_index: int, position: int) -> str:
    """Deterministic id of the ``position``-th call of step ``step_index`` in a conversation."""
    digest = hashlib.sha256(msgspec.json.encode(conversation_prefix))
    digest.update(f"|{step_index}|{position}".encode())
    return "call_" + digest.hexdigest()[:24]


def choose_answer(script: Script, request: ChatCompletionRequest) -> Answer:
    """Apply the script's rules to a request (pure: no I/O, no state)."""
    messages = request.messages
    if is_title_request(request):
        return Answer("title", None, 0, ScriptStep(text=script.title), ())
    last_user = _last_user_index(messages)
    user_text = message_text(messages[last_user]) if last_user >= 0 else ""
    step_index = sum(1 for m in messages[last_user + 1 :] if m.get("role") == "assistant")
    for rule_index, rule in enumerate(script.rules):
        if rule.when_user not in user_text:
            continue
        if step_index >= len(rule.steps):
            return Answer("chat", rule_index, step_index, ScriptStep(text=script.final_text), ())
        step = rule.steps[step_index]
        ids: tuple[str, ...] = ()
        if step.tool_calls is not None:
            prefix = messages[: last_user + 1]
            ids = tuple(tool_call_id(prefix, step_index, i) for i in range(len(step.tool_calls)))
        return Answer("chat", rule_index, step_index, step, ids)
    return Answer("chat", None, step_index, ScriptStep(text=script.final_text), ())


class ScriptedModel:
    """The server's mutable state: the current script and the log of received requests."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        model_id: str = DEFAULT_MODEL_ID,
        max_log: int = DEFAULT_MAX_LOG,
    ) -> None:
        self.script = script if script is not None else Script()
        self.model_id = model_id
        # Bounded: a long-running demo server must not grow without limit.
        self._log: deque[RecordedRequest] = deque(maxlen=max_log)
        self._next_index = 0

    def set_script(self, script: Script) -> None:
        """Replace the script; later requests are answered by the new one."""
        self.script = script

    def record(self, request: ChatCompletionRequest, answer: Answer) -> None:
        """Append a request to the log."""
        names = [
            str(t.get("function", {}).get("name", ""))
            for t in request.tools or []
            if isinstance(t, dict)
        ]
        self._log.append(
            RecordedRequest(
                index=self._next_index,
                received_at=time.time(),
                model=request.model,
                stream=request.stream,
                kind=answer.kind,
                messages=request.messages,
                tool_names=names,
                tools=request.tools or [],
                rule_index=answer.rule_index,
                step_index=answer.step_index,
                tool_call_ids=list(answer.tool_call_ids),
            )
        )
        self._next_index += 1

    def requests(self, since: int = 0) -> list[RecordedRequest]:
        """Logged requests whose index is at least ``since``."""
        return [r for r in self._log if r.index >= since]

    def log(self, since: int = 0) -> RequestLog:
        """The ``GET /requests`` body."""
        return RequestLog(requests=self.requests(since), next_index=self._next_index)

    def clear(self) -> None:
        """Forget logged requests (indexes keep counting up)."""
        self._log.clear()


STATE_KEY = web.AppKey("scripted_model", ScriptedModel)


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


def _usage(request: ChatCompletionRequest, answer: Answer) -> Usage:
    prompt = _tokens(len(msgspec.json.encode(request.messages)))
    step = answer.step
    out_chars = len(step.text or "") + sum(
        len(c.name) + len(msgspec.json.encode(c.arguments)) for c in step.tool_calls or ()
    )
    completion = _tokens(out_chars)
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _pieces(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _json_error(status: int, code: str, message: str) -> web.Response:
    body = ErrorResponse(error=ErrorBody(code=code, message=message))
    return web.Response(
        status=status, body=msgspec.json.encode(body), content_type="application/json"
    )


def _json(value: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(value), content_type="application/json"
    )


async def _stream_answer(
    http_request: web.Request,
    request: ChatCompletionRequest,
    answer: Answer,
    completion_id: str,
    model: str,
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(http_request)
    created = int(time.time())
    step = answer.step
    delay = step.delay_ms / 1000

    async def send(
        delta: Delta | None, finish: FinishReason | None = None, usage: Usage | None = None
    ) -> None:
        choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)]
        chunk = ChatCompletionChunk(
            id=completion_id, created=created, model=model, choices=choices, usage=usage
        )
        await response.write(b"data: " + msgspec.json.encode(chunk) + b"\n\n")

    try:
        if step.tool_calls is None:
            await send(Delta(role="assistant", content=""))
            for piece in _pieces(step.text or "", step.chunk_chars):
                if delay:
                    await asyncio.sleep(delay)
                await send(Delta(content=piece))
            await send(Delta(), "stop")
        else:
            await send(Delta(role="assistant"))
            if delay:
                await asyncio.sleep(delay)
            for position, (call, call_id) in enumerate(
                zip(step.tool_calls, answer.tool_call_ids, strict=True)
            ):
                opening = ToolCall(
                    index=position,
                    id=call_id,
                    type="function",
                    function=FunctionCall(name=call.name, arguments=""),
                )
                await send(Delta(tool_calls=[opening]))
                arguments = msgspec.json.encode(call.arguments).decode()
                for fragment in _pieces(arguments, _ARGUMENT_FRAGMENT_CHARS):
                    part = ToolCall(index=position, function=FunctionCall(arguments=fragment))
                    await send(Delta(tool_calls=[part]))
            await send(Delta(), "tool_calls")
        await send(None, usage=_usage(request, answer))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except ConnectionResetError:
        # The client went away mid-stream (an abort): nothing left to answer.
        pass
    return response


async def _whole_answer(
    request: ChatCompletionRequest, answer: Answer, completion_id: str, model: str
) -> web.Response:
    step = answer.step
    if step.tool_calls is None:
        text = step.text or ""
        chunks = max(1, math.ceil(len(text) / step.chunk_chars))
        await asyncio.sleep(step.delay_ms / 1000 * chunks)
        message = AssistantMessage(content=text)
        finish: FinishReason = "stop"
    else:
        await asyncio.sleep(step.delay_ms / 1000)
        calls = [
            ToolCall(
                id=call_id,
                type="function",
                function=FunctionCall(
                    name=call.name, arguments=msgspec.json.encode(call.arguments).decode()
                ),
            )
            for call, call_id in zip(step.tool_calls, answer.tool_call_ids, strict=True)
        ]
        message = AssistantMessage(tool_calls=calls)
        finish = "tool_calls"
    body = ChatCompletion(
        id=completion_id,
        created=int(time.time()),
        model=model,
        choices=[CompletionChoice(message=message, finish_reason=finish)],
        usage=_usage(request, answer),
    )
    return _json(body)


async def _chat_completions(http_request: web.Request) -> web.StreamResponse:
    state = http_request.app[STATE_KEY]
    try:
        request = msgspec.json.decode(await http_request.read(), type=ChatCompletionRequest)
    except msgspec.DecodeError as exc:
        return _json_error(400, "invalid_request", str(exc))
    answer = choose_answer(state.script, request)
    state.record(request, answer)
    # The id of a completion is derived like tool-call ids: stable for a given request.
    completion_id = (
        "chatcmpl-" + hashlib.sha256(msgspec.json.encode(request.messages)).hexdigest()[:24]
    )
    model = request.model or state.model_id
    if request.stream:
        return await _stream_answer(http_request, request, answer, completion_id, model)
    return await _whole_answer(request, answer, completion_id, model)


async def _models(http_request: web.Request) -> web.Response:
    state = http_request.app[STATE_KEY]
    return _json(ModelList(data=[ModelInfo(id=state.model_id)]))


async def _get_script(http_request: web.Request) -> web.Response:
    return _json(http_request.app[STATE_KEY].script)


async def _put_script(http_request: web.Request) -> web.Response:
    try:
        script = msgspec.json.decode(await http_request.read(), type=Script)
    except msgspec.DecodeError as exc:
        return _json_error(400, "invalid_script", str(exc))
    http_request.app[STATE_KEY].set_script(script)
    return _json(script)


async def _get_requests(http_request: web.Request) -> web.Response:
    try:
        since = int(http_request.query.get("since", "0"))
    except ValueError:
        return _json_error(400, "invalid_since", "`since` must be an integer")
    return _json(http_request.app[STATE_KEY].log(since))


async def _delete_requests(http_request: web.Request) -> web.Response:
    http_request.app[STATE_KEY].clear()
    return web.Response(status=204)


def build_app(
    script: Script | None = None,
    *,
    model_id: str = DEFAULT_MODEL_ID,
    max_log: int = DEFAULT_MAX_LOG,
) -> web.Application:
    """The scripted model's aiohttp application, answering from ``script``."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = ScriptedModel(script, model_id=model_id, max_log=max_log)
    app.router.add_post("/v1/chat/completions", _chat_completions)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/script", _get_script)
    app.router.add_put("/script", _put_script)
    app.router.add_get("/requests", _get_requests)
    app.router.add_delete("/requests", _delete_requests)
    return app


@dataclass(frozen=True)
class ScriptedModelServer:
    """A running scripted model (see :func:`run_scripted_model`)."""

    url: str
    """Root URL, e.g. ``http://127.0.0.1:PORT``."""
    model: ScriptedModel
    """The live state: swap the script or read the request log in-process."""

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (ends in ``/v1``), for ``AgentConfig.base_url``."""
        return self.url + "/v1"


@asynccontextmanager
async def run_scripted_model(
    script: Script | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    model_id: str = DEFAULT_MODEL_ID,
    max_log: int = DEFAULT_MAX_LOG,
) -> AsyncIterator[ScriptedModelServer]:
    """Serve the scripted model on ``host`` (a free port unless ``port`` is given)."""
    app = build_app(script, model_id=model_id, max_log=max_log)
    async with serving(app, host=host, port=port) as url:
        yield ScriptedModelServer(url=url, model=app[STATE_KEY])


def main(argv: list[str] | None = None) -> None:
    """``python -m llm.scripted --port P [--host H] [--script file.json]``."""
    parser = argparse.ArgumentParser(
        prog="python -m llm.scripted",
        description="Serve the scripted (test/demo, not an LLM) OpenAI-compatible model.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--script", type=Path, help="JSON script; default: always final_text")
    parser.add_argument("--model-id", default=DEFAULT_MODEL_ID)
    args = parser.parse_args(argv)
    script = load_script(args.script) if args.script else Script()
    app = build_app(script, model_id=args.model_id)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=lambda _: print(f"scripted model on http://{args.host}:{args.port}/v1", flush=True),
    )


if __name__ == "__main__":
    main()
