"""GitHub trigger provider: issues, pull_request, push, check_suite, check_run, workflow_run.

The event kind comes from ``X-GitHub-Event``; without it (deliveries forwarded by Nango
carry no headers) it is inferred from the payload's keys as the reference does. Other
events (``ping``, ``issue_comment``...) yield nothing. GitHub is webhook only.

Dedup key: ``github:<kind>:<sha256 of the body>``; the registry replaces it with
``github:<X-GitHub-Delivery>`` when GitHub sends that header, so each delivery (a second
``synchronize``, a re-run) is its own event and only GitHub's retries are duplicates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from integrations._payload import body_key, decode_payload, unique
from integrations.provider import WebhookOnly
from integrations.signatures import header_value
from schemas.triggers import (
    GitHubCommit,
    GitHubContext,
    GitHubEventKind,
    GitHubFilters,
    ProviderType,
    TriggerContext,
)

EVENT_KINDS: tuple[GitHubEventKind, ...] = (
    "issues",
    "pull_request",
    "push",
    "check_suite",
    "check_run",
    "workflow_run",
)
_CHECK_KINDS = ("check_suite", "check_run", "workflow_run")
_LABELLED_KINDS = ("issues", "pull_request")


# --- GitHub's payload, the subset Warren reads --------------------------------------


class _Label(msgspec.Struct):
    name: str = ""


class _User(msgspec.Struct):
    login: str | None = None


class _Repo(msgspec.Struct):
    full_name: str | None = None
    html_url: str | None = None


class _Issue(msgspec.Struct):
    id: int
    number: int
    title: str = ""
    body: str | None = None
    html_url: str | None = None
    state: str | None = None
    labels: list[_Label] | None = None


class _Ref(msgspec.Struct):
    ref: str | None = None
    sha: str | None = None


class _PullRequest(msgspec.Struct):
    id: int
    number: int
    title: str = ""
    body: str | None = None
    html_url: str | None = None
    state: str | None = None
    draft: bool | None = None
    merged: bool | None = None
    base: _Ref | None = None
    head: _Ref | None = None
    labels: list[_Label] | None = None


class _CommitAuthor(msgspec.Struct):
    name: str | None = None


class _Commit(msgspec.Struct):
    id: str
    message: str = ""
    author: _CommitAuthor | None = None
    added: list[str] = []
    modified: list[str] = []
    removed: list[str] = []


class _Pusher(msgspec.Struct):
    name: str | None = None


class _App(msgspec.Struct):
    name: str | None = None


class _CheckSuite(msgspec.Struct):
    id: int
    head_branch: str | None = None
    head_sha: str | None = None
    status: str | None = None
    conclusion: str | None = None
    app: _App | None = None


class _CheckOutput(msgspec.Struct):
    title: str | None = None
    summary: str | None = None


class _CheckRun(msgspec.Struct):
    id: int
    name: str = ""
    status: str | None = None
    conclusion: str | None = None
    html_url: str | None = None
    head_sha: str | None = None
    check_suite: _CheckSuite | None = None
    output: _CheckOutput | None = None


class _WorkflowRun(msgspec.Struct):
    id: int
    name: str | None = None
    head_branch: str | None = None
    head_sha: str | None = None
    status: str | None = None
    conclusion: str | None = None
    html_url: str | None = None
    actor: _User | None = None


class _Payload(msgspec.Struct):
    action: str | None = None
    sender: _User | None = None
    repository: _Repo | None = None
    issue: _Issue | None = None
    pull_request: _PullRequest | None = None
    ref: str | None = None
    after: str | None = None
    compare: str | None = None
    pusher: _Pusher | None = None
    commits: list[_Commit] | None = None
    check_suite: _CheckSuite | None = None
    check_run: _CheckRun | None = None
    workflow_run: _WorkflowRun | None = None


# --- parsing --------------------------------------------------------------------------


def _infer_kinds(p: _Payload) -> list[GitHubEventKind]:
    """The reference's structural inference, for deliveries without ``X-GitHub-Event``."""
    kinds: list[GitHubEventKind] = []
    if p.issue is not None and p.pull_request is None:
        kinds.append("issues")
    if p.pull_request is not None:
        kinds.append("pull_request")
    if p.commits is not None and p.ref and p.check_suite is None:
        kinds.append("push")
    if p.check_suite is not None:
        kinds.append("check_suite")
    if p.check_run is not None:
        kinds.append("check_run")
    if p.workflow_run is not None:
        kinds.append("workflow_run")
    return kinds


def _labels(labels: list[_Label] | None) -> tuple[str, ...]:
    return tuple(label.name for label in labels or [] if label.name)


class _Common(msgspec.Struct, frozen=True):
    repo: str | None
    repo_url: str | None
    sender: str | None
    action: str


def _context(
    kind: GitHubEventKind,
    common: _Common,
    item_id: str,
    *,
    dedup_key: str,
    title: str,
    raw_id: int | str,
    description: str | None = None,
    url: str | None = None,
    branch: str | None = None,
    labels: tuple[str, ...] = (),
    actor: str | None = None,
    related_files: tuple[str, ...] = (),
    **fields: Any,
) -> TriggerContext:
    gh = GitHubContext(
        event=kind, action=common.action, item_id=item_id, repo_url=common.repo_url, **fields
    )
    raw: dict[str, Any] = {"event": kind, "action": common.action, "id": raw_id}
    if common.repo:
        raw["repository"] = common.repo
    if gh.number is not None:
        raw["number"] = gh.number
    return TriggerContext(
        provider="github",
        event_type=f"{kind}:{common.action}",
        title=title,
        external_id=item_id,
        dedup_key=dedup_key,
        description=description,
        url=url,
        repo_full_name=common.repo,
        branch=branch,
        labels=labels,
        actor=actor or common.sender,
        related_files=related_files,
        raw=raw,
        github=gh,
    )


def _parse_kind(
    kind: GitHubEventKind, p: _Payload, body: bytes, delivery: str | None
) -> TriggerContext | None:
    repo = p.repository
    key = body_key("github", body, kind)
    common = _Common(
        repo=repo.full_name if repo else None,
        repo_url=repo.html_url if repo else None,
        sender=p.sender.login if p.sender else None,
        action=p.action or ("push" if kind == "push" else "event"),
    )
    if kind == "issues" and p.issue is not None:
        issue = p.issue
        return _context(
            kind,
            common,
            f"issue-{issue.id}",
            dedup_key=key,
            raw_id=issue.id,
            title=f"Issue #{issue.number}: {issue.title}",
            description=issue.body or None,
            url=issue.html_url,
            labels=_labels(issue.labels),
            number=issue.number,
            state=issue.state,
        )
    if kind == "pull_request" and p.pull_request is not None:
        pr = p.pull_request
        head = pr.head.ref if pr.head else None
        return _context(
            kind,
            common,
            f"pr-{pr.id}",
            dedup_key=key,
            raw_id=pr.id,
            title=f"PR #{pr.number}: {pr.title}",
            description=pr.body or None,
            url=pr.html_url,
            branch=head,
            labels=_labels(pr.labels),
            number=pr.number,
            state=pr.state,
            base_branch=pr.base.ref if pr.base else None,
            head_branch=head,
            head_sha=pr.head.sha if pr.head else None,
            is_draft=pr.draft,
            is_merged=pr.merged,
        )
    if kind == "push" and p.ref:
        branch = p.ref.removeprefix("refs/heads/")
        commits = p.commits or []
        marker = p.after or delivery or hashlib.sha256(body).hexdigest()[:16]
        files = [f for c in commits for f in (*c.added, *c.modified, *c.removed)]
        return _context(
            kind,
            common,
            f"push-{marker}",
            dedup_key=key,
            raw_id=marker,
            title=f"Push to {branch}: {len(commits)} commit(s)",
            description="\n".join(c.message for c in commits) or None,
            url=p.compare,
            branch=branch,
            actor=common.sender or (p.pusher.name if p.pusher else None),
            related_files=unique(files),
            commits=tuple(
                GitHubCommit(
                    sha=c.id, message=c.message, author=c.author.name if c.author else None
                )
                for c in commits
            ),
            compare_url=p.compare,
            head_sha=p.after,
        )
    if kind == "check_suite" and p.check_suite is not None:
        suite = p.check_suite
        return _context(
            kind,
            common,
            f"check-suite-{suite.id}",
            dedup_key=key,
            raw_id=suite.id,
            title=f"Check Suite {suite.conclusion or suite.status}",
            branch=suite.head_branch,
            check_name=(suite.app.name if suite.app else None) or "Check Suite",
            conclusion=suite.conclusion,
            head_sha=suite.head_sha,
        )
    if kind == "check_run" and p.check_run is not None:
        run = p.check_run
        output = run.output or _CheckOutput()
        return _context(
            kind,
            common,
            f"check-run-{run.id}",
            dedup_key=key,
            raw_id=run.id,
            title=f"Check Run: {run.name} - {run.conclusion or run.status}",
            description=output.summary,
            url=run.html_url,
            branch=run.check_suite.head_branch if run.check_suite else None,
            check_name=run.name,
            conclusion=run.conclusion,
            head_sha=run.head_sha,
            error_message=output.title,
            error_details=output.summary,
        )
    if kind == "workflow_run" and p.workflow_run is not None:
        wf = p.workflow_run
        return _context(
            kind,
            common,
            f"workflow-run-{wf.id}",
            dedup_key=key,
            raw_id=wf.id,
            title=f"Workflow: {wf.name} - {wf.conclusion or wf.status}",
            url=wf.html_url,
            branch=wf.head_branch,
            actor=common.sender or (wf.actor.login if wf.actor else None),
            workflow_name=wf.name,
            conclusion=wf.conclusion,
            head_sha=wf.head_sha,
        )
    return None


def parse_github(
    body: bytes, event: str | None = None, delivery: str | None = None
) -> list[TriggerContext]:
    """Contexts for one GitHub delivery; ``event`` is ``X-GitHub-Event`` when known."""
    payload = decode_payload("github", body, _Payload)
    if event is not None:
        kinds: list[GitHubEventKind] = [k for k in EVENT_KINDS if k == event]
    else:
        kinds = _infer_kinds(payload)
    parsed = (_parse_kind(kind, payload, body, delivery) for kind in kinds)
    return [ctx for ctx in parsed if ctx is not None]


def matches_github(ctx: TriggerContext, f: GitHubFilters) -> bool:
    """Apply GitHub filters to a context.

    - ``event_types``/``actions``: membership.
    - ``branches``: substring of any branch the item has (push ref; PR head or base;
      check/workflow head branch); items without a branch pass.
    - ``labels``: any label matches; applies to issues and pull requests only.
    - ``repos``: exact ``owner/name``; an item with no repository fails.
    - ``conclusions``: applies to check_suite/check_run/workflow_run; one that has not
      concluded yet fails.
    """
    gh = ctx.github
    if gh is None:
        return False
    if f.event_types and gh.event not in f.event_types:
        return False
    if f.actions and gh.action not in f.actions:
        return False
    if f.branches:
        branches = [b for b in (ctx.branch, gh.base_branch, gh.head_branch) if b]
        if branches and not any(want in have for want in f.branches for have in branches):
            return False
    if f.labels and gh.event in _LABELLED_KINDS and not set(f.labels) & set(ctx.labels):
        return False
    if f.repos and ctx.repo_full_name not in f.repos:
        return False
    return not (f.conclusions and gh.event in _CHECK_KINDS and gh.conclusion not in f.conclusions)


class GitHubProvider(WebhookOnly):
    """GitHub webhooks (App or repository hooks); no polling."""

    name: ClassVar[ProviderType] = "github"
    filters_type: ClassVar[type[msgspec.Struct]] = GitHubFilters
    poll_error: ClassVar[str] = "triggers only support webhooks, not polling"

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[TriggerContext]:
        """Parse using ``X-GitHub-Event`` and ``X-GitHub-Delivery`` when present."""
        return parse_github(
            body,
            event=header_value(headers, "X-GitHub-Event"),
            delivery=header_value(headers, "X-GitHub-Delivery"),
        )

    def matches(self, ctx: TriggerContext, filters: GitHubFilters) -> bool:
        """See :func:`matches_github`."""
        return matches_github(ctx, filters)
