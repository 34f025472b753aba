"""Wire shapes of the scripted model: its script, its request log, and the OpenAI-compatible
chat-completions subset it speaks.

The scripted model (``llm/scripted.py``) is a test and demo stand-in for an LLM. Its behaviour
is fully described by a :class:`Script`, which is plain data (JSON-loadable).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

# ---------------------------------------------------------------------------------------------
# The script
# ---------------------------------------------------------------------------------------------


class ScriptToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """One function call the scripted model asks the agent to make."""

    name: Annotated[str, msgspec.Meta(min_length=1)]
    arguments: dict[str, Any] = {}
    """JSON object sent (serialized) as the call's ``function.arguments``."""


class ScriptStep(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One model answer: either text or tool calls (exactly one of the two).

    JSON: ``{"text": "...", "chunk_chars": 16, "delay_ms": 0}`` or
    ``{"tool_calls": [{"name": "bash", "arguments": {...}}], "delay_ms": 0}``.
    """

    text: str | None = None
    tool_calls: tuple[ScriptToolCall, ...] | None = None
    chunk_chars: Annotated[int, msgspec.Meta(ge=1)] = 16
    """Text is streamed as ``delta.content`` chunks of at most this many characters."""
    delay_ms: Annotated[int, msgspec.Meta(ge=0, le=600_000)] = 0
    """Pause before each streamed chunk (text) or before the tool calls are sent."""

    def __post_init__(self) -> None:
        if (self.text is None) == (self.tool_calls is None):
            raise ValueError("a step has exactly one of `text` or `tool_calls`")
        if self.tool_calls is not None and not self.tool_calls:
            raise ValueError("`tool_calls` must not be empty")


class ScriptRule(msgspec.Struct, frozen=True, kw_only=True):
    """Steps to answer with when the conversation's last user message matches."""

    when_user: str = ""
    """Substring of the last user message's text; empty matches anything."""
    steps: tuple[ScriptStep, ...] = ()


class Script(msgspec.Struct, frozen=True, kw_only=True):
    """What the scripted model answers. The first rule whose ``when_user`` matches wins.

    The step answered is the number of assistant messages after the last user message, so
    the model is stateless: a restart or a retried request gets the same answer.
    """

    rules: tuple[ScriptRule, ...] = ()
    final_text: str = "Done."
    """Answer once a rule's steps are used up, or when no rule matches."""
    title: str = "Scripted session"
    """Answer to title-generation requests."""


# ---------------------------------------------------------------------------------------------
# Request log (GET /requests)
# ---------------------------------------------------------------------------------------------

RequestKind = Literal["chat", "title"]


class RecordedRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One chat-completions request the scripted model received, for test assertions."""

    index: int
    """Position in the log since the server started (not reset by clearing)."""
    received_at: float
    model: str
    stream: bool
    kind: RequestKind
    messages: list[dict[str, Any]]
    """The messages exactly as received."""
    tool_names: list[str]
    """Names of the tools the request offered."""
    tools: list[dict[str, Any]] = []
    """The tool definitions exactly as received (name, description, JSON-schema parameters)."""
    rule_index: int | None
    """Which rule answered (None: title request or no rule matched)."""
    step_index: int
    """Assistant messages after the last user message: the step that was asked for."""
    tool_call_ids: list[str] = []
    """Ids of the tool calls answered, in order (empty for text answers)."""


class RequestLog(msgspec.Struct, frozen=True, kw_only=True):
    """Body of ``GET /requests``."""

    requests: list[RecordedRequest]
    next_index: int
    """Pass as ``?since=`` to get only later requests."""


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible chat completions (the subset the scripted model reads and writes)
# ---------------------------------------------------------------------------------------------


class ChatCompletionRequest(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /v1/chat/completions`` body; unknown fields are ignored."""

    model: str = ""
    messages: list[dict[str, Any]] = []
    stream: bool = False
    tools: list[dict[str, Any]] | None = None


class FunctionCall(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``function`` of a tool call; in stream deltas either field may be a fragment."""

    name: str | None = None
    arguments: str | None = None


class ToolCall(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A tool call, whole (non-streaming) or as a stream fragment (``index`` set)."""

    index: int | None = None
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCall


class Delta(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``choices[].delta`` of a stream chunk."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCall] | None = None


FinishReason = Literal["stop", "tool_calls"]


class ChunkChoice(msgspec.Struct, frozen=True, kw_only=True):
    """One choice of a stream chunk; ``finish_reason`` is null until the last one."""

    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Token counts (estimated by the scripted model: about 4 characters per token)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionChunk(msgspec.Struct, frozen=True, kw_only=True):
    """One ``data:`` line of a streamed answer (``usage`` is set only on the usage chunk)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class AssistantMessage(msgspec.Struct, frozen=True, kw_only=True):
    """``choices[].message`` of a non-streamed answer."""

    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None


class CompletionChoice(msgspec.Struct, frozen=True, kw_only=True):
    """One choice of a non-streamed answer."""

    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason


class ChatCompletion(msgspec.Struct, frozen=True, kw_only=True):
    """A non-streamed answer (``stream`` false)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of ``GET /v1/models``."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "warren"


class ModelList(msgspec.Struct, frozen=True, kw_only=True):
    """Body of ``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelInfo]
