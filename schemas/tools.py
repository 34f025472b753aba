"""Wire shapes of Warren's agent tools: their arguments and the sandbox → Warren callback.

OpenCode calls a tool; Warren's plugin in the sandbox POSTs
``{api}/api/sessions/{session_id}/tools/{tool}`` with ``Authorization: Bearer <sandbox token>``
and a :class:`ToolCallRequest`; Warren answers a :class:`ToolCallResponse`. The argument
Structs below are the single definition of each tool's input: the plugin's JSON schemas are
generated from them (``sandboxes/tool_plugins.py``) and Warren decodes ``args`` with them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

ToolName = Literal[
    "verify",
    "save_snapshot",
    "save_service_commands",
    "automation_complete",
    "request_env_variables",
]
TOOL_ALIASES: dict[str, ToolName] = {"automation.complete": "automation_complete"}
"""Other names accepted for a tool. Model APIs (OpenAI, Anthropic) only accept tool names
matching ``[a-zA-Z0-9_-]``, so the agent sees ``automation_complete``; the contract's dotted
``automation.complete`` stays accepted by Warren's endpoint."""

Outcome = Literal["succeeded", "failed", "needs_human"]
EnvKind = Literal["env", "secret"]


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class VerifyArgs(msgspec.Struct, frozen=True, kw_only=True):
    """``verify``: upload a folder of evidence (screenshots, logs, test output)."""

    folder: Annotated[
        str,
        msgspec.Meta(max_length=500),
        _doc("Workspace-relative folder to upload; default .warren/verification/"),
    ] = ".warren/verification/"


class SaveSnapshotArgs(msgspec.Struct, frozen=True, kw_only=True):
    """``save_snapshot``: save the sandbox state."""

    message: Annotated[
        str, msgspec.Meta(max_length=500), _doc("What the snapshot contains (optional)")
    ] = ""


class ServiceCommandArg(msgspec.Struct, frozen=True, kw_only=True):
    """One service command of ``save_service_commands``."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100), _doc("Service name")]
    command: Annotated[
        str, msgspec.Meta(min_length=1, max_length=1000), _doc("Shell command that starts it")
    ]
    cwd: Annotated[
        str, msgspec.Meta(max_length=500), _doc("Directory to run in, relative to the repo")
    ] = ""
    workspace_path: Annotated[
        str,
        msgspec.Meta(max_length=500),
        _doc("Which repo (its folder in the workspace) the command belongs to"),
    ] = msgspec.field(default="", name="workspacePath")


class SaveServiceCommandsArgs(msgspec.Struct, frozen=True, kw_only=True):
    """``save_service_commands`` (setup sessions only): commands that start the services."""

    commands: Annotated[
        tuple[ServiceCommandArg, ...],
        msgspec.Meta(min_length=1, max_length=10),
        _doc("1 to 10 service commands"),
    ]


class AutomationCompleteArgs(msgspec.Struct, frozen=True, kw_only=True):
    """``automation_complete``: finish an automation run (idempotent per ``completion_id``)."""

    run_id: Annotated[str, msgspec.Meta(min_length=1), _doc("run_id from the trigger context")]
    completion_id: Annotated[
        str, msgspec.Meta(min_length=1), _doc("completion_id from the trigger context")
    ]
    outcome: Annotated[Outcome, _doc("succeeded, failed, or needs_human")]
    summary_markdown: Annotated[str, _doc("What was done and found, in Markdown")] = ""
    citations: Annotated[tuple[str, ...], _doc("URLs or file paths backing the summary")] = ()
    diff_ref: Annotated[str, _doc("Branch, commit or PR URL of the change")] = ""
    test_report_ref: Annotated[str, _doc("Where the test report is")] = ""
    side_effect_refs: Annotated[
        tuple[str, ...], _doc("References to external side effects (issues, messages)")
    ] = ()


class EnvSuggestion(msgspec.Struct, frozen=True, kw_only=True):
    """A suggested value (or how to get one) for a requested variable."""

    label: Annotated[str, msgspec.Meta(min_length=1)]
    value: str = ""
    instructions: str = ""


class EnvKeyRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One variable asked of the user."""

    key: Annotated[
        str,
        msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=200),
        _doc("Environment variable name"),
    ]
    description: Annotated[str, _doc("What it is for and where to find it")] = ""
    type: Annotated[EnvKind, _doc("env for plain values, secret for credentials")]
    required: bool = True
    suggestions: tuple[EnvSuggestion, ...] = ()


class RequestEnvVariablesArgs(msgspec.Struct, frozen=True, kw_only=True):
    """``request_env_variables``: ask the user for environment variables and secrets."""

    keys: Annotated[tuple[EnvKeyRequest, ...], msgspec.Meta(min_length=1, max_length=50)]


TOOL_ARGS: dict[ToolName, type[msgspec.Struct]] = {
    "verify": VerifyArgs,
    "save_snapshot": SaveSnapshotArgs,
    "save_service_commands": SaveServiceCommandsArgs,
    "automation_complete": AutomationCompleteArgs,
    "request_env_variables": RequestEnvVariablesArgs,
}
"""Each tool's argument Struct."""


class ToolCallRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Body the plugin POSTs; retries of one call carry the same ``tool_call_id``.

    ``tool_call_id`` is OpenCode's call id, except for ``automation_complete`` where it is the
    ``completion_id`` (completion is idempotent per completion, whichever call carries it).
    """

    tool_call_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    args: dict[str, Any] = {}


class ToolCallResponse(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Warren's answer: ``result`` is the text the agent sees."""

    success: bool
    result: str
    data: Any = None
