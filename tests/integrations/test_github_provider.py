"""GitHub webhook parsing, filters and dedup keys on documented payloads."""

from __future__ import annotations

import msgspec
import pytest

from integrations.errors import PayloadError, PollingNotSupportedError
from integrations.github import GitHubProvider, matches_github, parse_github
from integrations.registry import default_registry
from schemas.triggers import GitHubFilters, PollConnection, TriggerContext
from tests.integrations.helpers import payload_bytes


def _one(name: str, event: str | None) -> TriggerContext:
    contexts = parse_github(payload_bytes(name), event=event)
    assert len(contexts) == 1
    return contexts[0]


def test_issues_opened() -> None:
    ctx = _one("github_issues_opened", "issues")
    assert ctx.provider == "github"
    assert ctx.event_type == "issues:opened"
    assert ctx.title == "Issue #42: Checkout button does nothing on Safari"
    assert ctx.description is not None and "Pay now" in ctx.description
    assert ctx.url == "https://github.com/acme/webapp/issues/42"
    assert ctx.external_id == "issue-2081234567"
    assert ctx.repo_full_name == "acme/webapp"
    assert ctx.branch is None
    assert ctx.labels == ("bug", "agent")
    assert ctx.actor == "octocat"
    assert ctx.github is not None and ctx.github.number == 42 and ctx.github.state == "open"
    assert ctx.raw == {
        "event": "issues",
        "action": "opened",
        "id": 2081234567,
        "repository": "acme/webapp",
        "number": 42,
    }


def test_pull_request_opened() -> None:
    ctx = _one("github_pull_request_opened", "pull_request")
    gh = ctx.github
    assert gh is not None
    assert ctx.event_type == "pull_request:opened"
    assert ctx.title == "PR #108: Fix Safari checkout handler"
    assert ctx.branch == "fix/safari-checkout"
    assert (gh.base_branch, gh.head_branch) == ("main", "fix/safari-checkout")
    assert gh.head_sha == "6dcb09b5b57875f334f61aebed695e2e4193db5e"
    assert gh.is_draft is False and gh.is_merged is False
    assert ctx.labels == ("bug",)
    assert ctx.url == "https://github.com/acme/webapp/pull/108"


def test_push() -> None:
    ctx = _one("github_push", "push")
    gh = ctx.github
    assert gh is not None
    assert ctx.event_type == "push:push"
    assert ctx.title == "Push to release/2026-02: 2 commit(s)"
    assert ctx.branch == "release/2026-02"
    assert ctx.description == "Bump checkout SDK to 4.2\nAdd Safari regression test"
    assert ctx.related_files == (
        "package.json",
        "package-lock.json",
        "tests/checkout.safari.spec.ts",
    )
    assert [c.sha[:7] for c in gh.commits] == ["c441029", "0d1a26e"]
    assert gh.commits[0].author == "Grace Hopper"
    assert ctx.url == gh.compare_url and ctx.actor == "grace"


def test_check_run_completed() -> None:
    ctx = _one("github_check_run_completed", "check_run")
    gh = ctx.github
    assert gh is not None
    assert ctx.event_type == "check_run:completed"
    assert ctx.title == "Check Run: test (ubuntu-latest, 20.x) - failure"
    assert ctx.branch == "fix/safari-checkout"
    assert gh.conclusion == "failure"
    assert gh.error_message == "2 tests failed"
    assert gh.error_details is not None and "expected 200" in gh.error_details


def test_workflow_run_completed() -> None:
    ctx = _one("github_workflow_run_completed", "workflow_run")
    gh = ctx.github
    assert gh is not None
    assert ctx.event_type == "workflow_run:completed"
    assert ctx.title == "Workflow: CI - failure"
    assert ctx.branch == "main" and gh.workflow_name == "CI" and gh.conclusion == "failure"
    assert ctx.url == "https://github.com/acme/webapp/actions/runs/7812345678"


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("github_issues_opened", "issues"),
        ("github_pull_request_opened", "pull_request"),
        ("github_push", "push"),
        ("github_check_run_completed", "check_run"),
        ("github_workflow_run_completed", "workflow_run"),
    ],
)
def test_inference_without_event_header_matches_header(name: str, event: str) -> None:
    # Deliveries forwarded by Nango carry no X-GitHub-Event.
    assert parse_github(payload_bytes(name)) == parse_github(payload_bytes(name), event=event)


def test_unsupported_events_yield_nothing() -> None:
    assert parse_github(payload_bytes("github_issues_opened"), event="issue_comment") == []
    assert parse_github(b'{"zen": "Keep it logically awesome.", "hook_id": 1}', event="ping") == []
    # The header wins over the payload's shape.
    assert parse_github(payload_bytes("github_issues_opened"), event="push") == []


def test_push_without_after_uses_delivery_id() -> None:
    body = b'{"ref": "refs/heads/main", "commits": [], "repository": {"full_name": "a/b"}}'
    [ctx] = parse_github(body, event="push", delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert ctx.external_id == "push-72d3162e-cc78-11e3-81ab-4c9367dc0958"


def test_malformed_body_is_a_payload_error() -> None:
    with pytest.raises(PayloadError):
        parse_github(b"not json", event="issues")
    with pytest.raises(PayloadError):
        parse_github(b'{"issue": {"id": "x", "number": "y"}}', event="issues")


def test_provider_reads_headers() -> None:
    headers = {"x-github-event": "workflow_run", "X-GitHub-Delivery": "d-1"}
    [ctx] = GitHubProvider().parse_webhook(payload_bytes("github_workflow_run_completed"), headers)
    assert ctx.event_type == "workflow_run:completed"


# --- filters ----------------------------------------------------------------------------

ISSUE = _one("github_issues_opened", "issues")
PR = _one("github_pull_request_opened", "pull_request")
PUSH = _one("github_push", "push")
CHECK = _one("github_check_run_completed", "check_run")
WORKFLOW = _one("github_workflow_run_completed", "workflow_run")


def test_empty_filters_pass_everything() -> None:
    assert all(matches_github(c, GitHubFilters()) for c in (ISSUE, PR, PUSH, CHECK, WORKFLOW))


def test_event_type_and_action_filters() -> None:
    f = GitHubFilters(event_types=("issues", "pull_request"))
    assert [matches_github(c, f) for c in (ISSUE, PR, PUSH)] == [True, True, False]
    assert matches_github(ISSUE, GitHubFilters(actions=("opened",)))
    assert not matches_github(ISSUE, GitHubFilters(actions=("closed", "labeled")))


def test_branch_filter_is_substring_and_skips_items_without_branch() -> None:
    assert matches_github(PUSH, GitHubFilters(branches=("release",)))
    assert not matches_github(PUSH, GitHubFilters(branches=("main",)))
    # A pull request matches on its head or its base branch.
    assert matches_github(PR, GitHubFilters(branches=("main",)))
    assert matches_github(PR, GitHubFilters(branches=("safari",)))
    assert not matches_github(PR, GitHubFilters(branches=("develop",)))
    # Issues have no branch: the filter does not apply.
    assert matches_github(ISSUE, GitHubFilters(branches=("develop",)))


def test_label_filter_matches_any_on_issues_and_prs_only() -> None:
    assert matches_github(ISSUE, GitHubFilters(labels=("agent", "docs")))
    assert not matches_github(ISSUE, GitHubFilters(labels=("docs",)))
    assert not matches_github(PR, GitHubFilters(labels=("agent",)))
    assert matches_github(PUSH, GitHubFilters(labels=("agent",)))


def test_repo_filter_is_exact() -> None:
    assert matches_github(PUSH, GitHubFilters(repos=("acme/webapp",)))
    assert not matches_github(PUSH, GitHubFilters(repos=("acme/web", "acme/webapp2")))


def test_conclusion_filter_applies_to_checks_and_workflows() -> None:
    failing = GitHubFilters(conclusions=("failure", "timed_out"))
    assert matches_github(CHECK, failing) and matches_github(WORKFLOW, failing)
    assert not matches_github(CHECK, GitHubFilters(conclusions=("success",)))
    assert matches_github(ISSUE, GitHubFilters(conclusions=("success",)))
    queued = parse_github(
        b'{"action": "created", "check_run": {"id": 5, "name": "lint", "status": "queued",'
        b' "conclusion": null}, "repository": {"full_name": "acme/webapp"}}',
        event="check_run",
    )[0]
    assert not matches_github(queued, failing)


def test_registry_decodes_stored_config() -> None:
    registry = default_registry()
    config = {"event_types": ["check_run"], "conclusions": ["failure"], "repos": ["acme/webapp"]}
    assert registry.matches("github", CHECK, config)
    assert not registry.matches("github", ISSUE, config)
    assert registry.matches("github", ISSUE, None)


async def test_github_does_not_poll() -> None:
    with pytest.raises(PollingNotSupportedError, match="only support webhooks"):
        await GitHubProvider().poll(PollConnection(access_token="t"), GitHubFilters(), None)


def test_dedup_key_is_one_delivery_not_one_item() -> None:
    # Two pull_request.synchronize deliveries of one PR (a new head sha each): two keys;
    # with X-GitHub-Delivery the key is the delivery id, so GitHub's retry is the same key.
    first = msgspec.json.decode(payload_bytes("github_pull_request_opened"))
    first["action"] = "synchronize"
    second = {**first, "pull_request": {**first["pull_request"], "head": {"sha": "b" * 40}}}
    [a] = parse_github(msgspec.json.encode(first), event="pull_request")
    [b] = parse_github(msgspec.json.encode(second), event="pull_request")
    assert a.external_id == b.external_id and a.dedup_key != b.dedup_key
    assert (
        a.dedup_key == parse_github(msgspec.json.encode(first), event="pull_request")[0].dedup_key
    )
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d-1"}
    [keyed] = default_registry().parse_webhook("github", msgspec.json.encode(second), headers)
    assert keyed.dedup_key == "github:d-1"
