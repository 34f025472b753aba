"""The session WebSocket's messages, both directions (README: "The session WebSocket").

WebSocket messages are tagged unions on the ``type`` field. Every server → client message
carries ``seq``:

- ``seq > 0``: the event's JetStream stream sequence in the session's durable event log
  (``sessions.<id>.events``). Sequences grow but are not contiguous (the stream is shared by
  every session). A client remembers the last one it applied and reconnects with
  ``?after_seq=<it>`` to get exactly the events after it.
- ``seq == 0``: a reply to this socket only (``pong``, a ``status`` or ``error`` answering a
  request); never logged, never a cursor.
- ``init.seq`` is the cursor the transcript in ``init`` is complete up to: the events that
  follow have higher sequences.

Events are published to JetStream with ``seq`` 0 (the sequence is only known once stored);
the ingress writes the real one into the frame (:func:`with_seq`).

Field names are snake_case, like the rest of Warren's API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from schemas.git import GitAction, GitCode, GitResult, GitState
from schemas.sessions import MAX_IMAGES, ClientStatus, ImageDataUri, PromptText, WorkspacePath
from schemas.transcript import Message

# --- server → client ------------------------------------------------------------------------


class _Server(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every server → client message."""

    seq: int = 0


class InitConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Session facts a client needs to render the transcript."""

    session_id: str
    title: str
    session_type: str
    client_type: str
    status: ClientStatus


class Init(_Server, tag="init", frozen=True, kw_only=True):
    """The transcript up to ``seq``; events after ``seq`` follow."""

    messages: tuple[Message, ...] = ()
    config: InitConfig | None = None


class MessageEvent(_Server, tag="message", frozen=True, kw_only=True):
    """A new message: a user prompt (complete) or an agent message stub (streaming)."""

    message: Message


class Token(_Server, tag="token", frozen=True, kw_only=True):
    """Streamed text appended to a text part."""

    message_id: str
    part_id: str
    token: str


class TextPartComplete(_Server, tag="text_part_complete", frozen=True, kw_only=True):
    """A text part is final: ``text`` replaces whatever was streamed. ``null`` means the
    streamed text is the final text (sent for long texts instead of repeating them)."""

    message_id: str
    part_id: str
    text: str | None


class ToolStart(_Server, tag="tool_start", frozen=True, kw_only=True):
    """A tool call started (sent again if its arguments arrive later)."""

    message_id: str | None = None
    part_id: str
    tool_call_id: str
    tool: str
    args: dict[str, Any] = {}


class ToolSummaryState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """State of one step of a sub-agent tool."""

    status: str
    title: str | None = None


class ToolSummaryItem(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a sub-agent tool."""

    id: str
    tool: str
    state: ToolSummaryState


class ToolMetadataBody(msgspec.Struct, frozen=True, kw_only=True):
    """Progress of a running tool."""

    summary: tuple[ToolSummaryItem, ...] = ()


class ToolMetadata(_Server, tag="tool_metadata", frozen=True, kw_only=True):
    """New progress of a running tool (sub-agent steps)."""

    tool_call_id: str
    tool: str
    title: str | None = None
    metadata: ToolMetadataBody = ToolMetadataBody()


class ToolEnd(_Server, tag="tool_end", frozen=True, kw_only=True):
    """A tool call ended: ``result`` is its output, or its error when ``status`` is error."""

    message_id: str | None = None
    part_id: str
    tool_call_id: str
    tool: str
    result: str = ""
    status: Literal["completed", "error"] = "completed"
    duration_ms: int = 0


class MessageComplete(_Server, tag="message_complete", frozen=True, kw_only=True):
    """An agent message finished."""

    message_id: str


class MessageCancelled(_Server, tag="message_cancelled", frozen=True, kw_only=True):
    """An agent message was aborted (cancel)."""

    message_id: str | None = None


class Status(_Server, tag="status", frozen=True, kw_only=True):
    """The session's status changed (or, with seq 0, the answer to ``get_status``)."""

    status: ClientStatus
    message: str | None = None


class Error(_Server, tag="error", frozen=True, kw_only=True):
    """Something failed: the agent, the sandbox, or a client request (seq 0; ``client_id``
    names the failed request when it carried one, so the client stops resending it)."""

    message: str
    code: str | None = None
    client_id: str | None = None


class ClientAck(_Server, tag="client_ack", frozen=True, kw_only=True):
    """Warren extension: the request with this ``client_id`` was applied (a prompt: stored
    and delivered to the agent, under ``message_id``). A client resends what it sent but saw
    no ack for after a reconnect; a resent id is applied once (``duplicate`` true)."""

    client_id: str
    message_id: str | None = None
    duplicate: bool = False


class Pong(_Server, tag="pong", frozen=True, kw_only=True):
    """Answer to ``ping``."""


class SnapshotResult(_Server, tag="snapshot_result", frozen=True, kw_only=True):
    """Outcome of a snapshot requested by a client or the agent."""

    success: bool
    snapshot_id: str | None = None
    error: str | None = None
    target: Literal["configuration", "session"] = "session"


class PreviewUrl(_Server, tag="preview_url", frozen=True, kw_only=True):
    """The sandbox's preview URL."""

    url: str


class TitleUpdate(_Server, tag="title_update", frozen=True, kw_only=True):
    """The session got a (new) title."""

    title: str


class GitStatusEvent(_Server, tag="git_status", frozen=True, kw_only=True):
    """Answer to ``get_git_status``, to the asking socket only (seq 0)."""

    state: GitState


class GitResultEvent(_Server, tag="git_result", frozen=True, kw_only=True):
    """Outcome of a git operation (:class:`schemas.git.GitResult` on the wire), to the
    asking socket only (seq 0). ``action`` ``status`` reports a failed ``get_git_status``."""

    action: GitAction
    success: bool
    code: GitCode
    message: str = ""
    pr_url: str | None = None

    @classmethod
    def of(cls, result: GitResult) -> GitResultEvent:
        """The message reporting ``result``."""
        return cls(
            action=result.action,
            success=result.success,
            code=result.code,
            message=result.message,
            pr_url=result.pr_url,
        )


class AutoStartEntry(msgspec.Struct, frozen=True, kw_only=True):
    """Output of one service command run by ``run_auto_start``."""

    name: str
    output: str
    exit_code: int | None = None


class AutoStartOutput(_Server, tag="auto_start_output", frozen=True, kw_only=True):
    """Output of ``run_auto_start``."""

    run_id: str
    entries: tuple[AutoStartEntry, ...] = ()


class ActionApprovalRequest(_Server, tag="action_approval_request", frozen=True, kw_only=True):
    """An agent action waits for a human's approval."""

    invocation_id: str
    integration: str
    action: str
    risk_level: str
    params: dict[str, Any] = {}
    expires_at: datetime | None = None


class ActionApprovalResult(_Server, tag="action_approval_result", frozen=True, kw_only=True):
    """A pending action was approved or denied."""

    invocation_id: str
    status: str
    approved_by: str | None = None


class ActionCompleted(_Server, tag="action_completed", frozen=True, kw_only=True):
    """An action ran."""

    invocation_id: str
    status: Literal["completed", "failed"]
    result: Any = None
    error: str | None = None


ServerMessage = (
    Init
    | MessageEvent
    | Token
    | TextPartComplete
    | ToolStart
    | ToolMetadata
    | ToolEnd
    | MessageComplete
    | MessageCancelled
    | Status
    | Error
    | ClientAck
    | Pong
    | SnapshotResult
    | PreviewUrl
    | TitleUpdate
    | GitStatusEvent
    | GitResultEvent
    | AutoStartOutput
    | ActionApprovalRequest
    | ActionApprovalResult
    | ActionCompleted
)
"""Every server → client WebSocket message."""

_SEQ_FIELD = b',"seq":0'


def with_seq(payload: bytes, seq: int) -> bytes:
    """A logged event's JSON (encoded with ``seq`` 0) carrying ``seq`` instead.

    msgspec encodes the tag first and then the base class's ``seq``, so the field is the
    one right after ``{"type":"..."``; anything else is refused.
    """
    head, sep, tail = payload.partition(_SEQ_FIELD)
    if not sep or not head.startswith(b'{"type":"') or b"," in head:
        raise ValueError("not an encoded server message")
    return head + b',"seq":' + str(seq).encode() + tail


# --- client → server ------------------------------------------------------------------------


ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class _Client(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", forbid_unknown_fields=True
):
    """Base of every client → server message. With a ``client_id`` the server answers
    ``client_ack`` once the request is applied, and applies a resent id once."""

    client_id: ClientId | None = None


class Ping(_Client, tag="ping", frozen=True, kw_only=True):
    """Keep-alive; answered with ``pong``."""


class Prompt(_Client, tag="prompt", frozen=True, kw_only=True):
    """Send the agent a message."""

    content: PromptText
    images: Annotated[tuple[ImageDataUri, ...], msgspec.Meta(max_length=MAX_IMAGES)] = ()


class Cancel(_Client, tag="cancel", frozen=True, kw_only=True):
    """Abort what the agent is doing."""


class GetStatus(_Client, tag="get_status", frozen=True, kw_only=True):
    """Ask for the current status."""


class Ack(_Client, tag="ack", frozen=True, kw_only=True):
    """Warren extension: the last ``seq`` the client applied. A client that sends acks is
    held to a window of unacknowledged events (close 4008 past it), which detects a slow
    reader even where the transport gives no backpressure (Ray Serve's proxy buffers)."""

    seq: Annotated[int, msgspec.Meta(ge=0)]


class GetMessages(_Client, tag="get_messages", frozen=True, kw_only=True):
    """Ask for ``init`` again (the transcript and a fresh cursor)."""


class SaveSnapshot(_Client, tag="save_snapshot", frozen=True, kw_only=True):
    """Snapshot the sandbox now."""

    message: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class RunAutoStart(_Client, tag="run_auto_start", frozen=True, kw_only=True):
    """Run the configuration's service commands (test or start)."""

    run_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    mode: Literal["test", "start"] = "start"
    commands: tuple[dict[str, Any], ...] | None = None


class GetGitStatus(_Client, tag="get_git_status", frozen=True, kw_only=True):
    """Ask for the workspace's git state."""

    workspace_path: WorkspacePath | None = None


class GitCreateBranch(_Client, tag="git_create_branch", frozen=True, kw_only=True):
    """Create and switch to a branch."""

    branch_name: Annotated[str, msgspec.Meta(min_length=1, max_length=250)]
    workspace_path: WorkspacePath | None = None


class GitCommitRequest(_Client, tag="git_commit", frozen=True, kw_only=True):
    """Commit changes."""

    message: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
    include_untracked: bool = False
    files: tuple[str, ...] | None = None
    workspace_path: WorkspacePath | None = None


class GitPush(_Client, tag="git_push", frozen=True, kw_only=True):
    """Push the current branch."""

    workspace_path: WorkspacePath | None = None


class GitCreatePr(_Client, tag="git_create_pr", frozen=True, kw_only=True):
    """Push and open a pull request."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=250)]
    body: str | None = None
    base_branch: str | None = None
    workspace_path: WorkspacePath | None = None


ClientMessage = (
    Ping
    | Prompt
    | Cancel
    | GetStatus
    | Ack
    | GetMessages
    | SaveSnapshot
    | RunAutoStart
    | GetGitStatus
    | GitCreateBranch
    | GitCommitRequest
    | GitPush
    | GitCreatePr
)
"""Every client → server WebSocket message."""
