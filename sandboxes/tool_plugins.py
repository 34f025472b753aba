"""Warren's agent tools as one import-free OpenCode plugin (``opencode_plugin.js``).

What OpenCode 1.18 accepts (checked against the binary and its source):

- A plugin file in a config folder's ``plugin/`` exports async functions; each is called with
  OpenCode's plugin input and returns hooks. ``{tool: {id: {description, args, execute}}}``
  registers tools under ``id``. Only one function is exported, so it is initialised once.
- ``args`` is normally a map of zod schemas. Without zod (no imports), OpenCode takes each
  value as a JSON-schema property and marks every one required; the plugin's
  ``tool.definition`` hook then sets ``output.jsonSchema`` to the full schema (the one the
  model sees). OpenCode does not validate plugin-tool input itself: Warren does.
- ``execute(args, context)``: ``context.callID`` is the model's tool-call id; ``context.abort``
  is the call's AbortSignal. A returned string is the tool's output; a throw marks it failed.
- OpenCode accepts any tool id (``automation.complete`` works), but model APIs only take
  ``[a-zA-Z0-9_-]`` names, so the tool is ``automation_complete``.

Each tool POSTs ``{tool_call_id, args}`` (``schemas.tools.ToolCallRequest``) to
``$WARREN_API_URL/api/sessions/$WARREN_SESSION_ID/tools/<name>`` with
``Authorization: Bearer $WARREN_SANDBOX_TOKEN``: 120 s per attempt; transport errors, 429 and
5xx are retried up to 5 times after 0.5, 1, 2, 4, 8 s with the same ``tool_call_id``. A 2xx
returns the answer's ``result`` text; another 4xx (or ``success: false``) returns an
``Error: ...`` text the model can read; exhausted retries throw (the tool part fails).
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import msgspec

from schemas.sandbox import AgentMode
from schemas.tools import TOOL_ARGS, ToolName

_TEMPLATE_MARKER = "__WARREN_TOOLS__"

TOOL_DESCRIPTIONS: dict[ToolName, str] = {
    "verify": (
        "Upload evidence of your work (screenshots, logs, test output) from a folder in the "
        "workspace to Warren so the user can see it. Put the files in the folder first "
        "(default .warren/verification/). Returns where the files were stored."
    ),
    "save_snapshot": (
        "Save the sandbox's current state (workspace and environment) as a snapshot that "
        "later sessions start from. Secret env files are removed during the capture."
    ),
    "save_service_commands": (
        "Store the commands that start this project's long-running services (dev servers, "
        "databases, workers), 1 to 10 of them, so sessions started from the snapshot run "
        "them automatically. Setup sessions only."
    ),
    "automation_complete": (
        "Finish the automation run that started this session: give the run_id and "
        "completion_id from .warren/trigger-context.json, the outcome (succeeded, failed, "
        "needs_human) and a Markdown summary. Call it exactly once, at the very end."
    ),
    "request_env_variables": (
        "Ask the user for environment variables or secrets the project needs. The user "
        "gets a form; never ask for secret values in chat. Returns immediately."
    ),
}

# Tools whose tool_call_id is one of their arguments rather than OpenCode's call id.
_ID_FROM_ARG: dict[ToolName, str] = {"automation_complete": "completion_id"}


def tool_names(mode: AgentMode) -> list[ToolName]:
    """The tools a sandbox in ``mode`` gets (``save_service_commands`` only in setup)."""
    names: list[ToolName] = list(TOOL_ARGS)
    if mode != "setup":
        names.remove("save_service_commands")
    return names


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Resolve ``$ref``s (some model APIs reject them) and drop the noisy ``title`` keys."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inline(defs[node["$ref"].rsplit("/", 1)[1]], defs)
    return {k: _inline(v, defs) for k, v in node.items() if k != "title"}


def parameters_schema(name: ToolName) -> dict[str, Any]:
    """The JSON schema of a tool's arguments, self-contained, generated from its Struct."""
    # Round-trip through JSON so defaults are plain JSON values (tuples become lists).
    schema = msgspec.json.decode(msgspec.json.encode(msgspec.json.schema(TOOL_ARGS[name])))
    defs = schema.get("$defs", {})
    inlined: dict[str, Any] = _inline(schema, defs)
    inlined.pop("$defs", None)
    inlined.pop("description", None)  # the tool's own description says it better
    inlined.setdefault("required", [])
    return inlined


def tool_specs(mode: AgentMode) -> dict[str, dict[str, Any]]:
    """``{name: {description, parameters, idFromArg?}}`` for the plugin."""
    specs: dict[str, dict[str, Any]] = {}
    for name in tool_names(mode):
        spec: dict[str, Any] = {
            "description": TOOL_DESCRIPTIONS[name],
            "parameters": parameters_schema(name),
        }
        if name in _ID_FROM_ARG:
            spec["idFromArg"] = _ID_FROM_ARG[name]
        specs[name] = spec
    return specs


def plugin_source(mode: AgentMode) -> str:
    """The JavaScript of ``warren.js`` for a sandbox in ``mode``."""
    template = files("sandboxes").joinpath("opencode_plugin.js").read_text(encoding="utf-8")
    if template.count(_TEMPLATE_MARKER) != 1:
        raise RuntimeError("opencode_plugin.js must contain the tools marker exactly once")
    return template.replace(_TEMPLATE_MARKER, json.dumps(tool_specs(mode), indent=2))
