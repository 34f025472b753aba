"""Open a pull request on GitHub for a branch already pushed (the last step of ``create_pr``).

An open pull request for the same head is returned as is, also when another creator wins
the race; GitHub refusing the token maps to AUTH_FAILED. The result is the ``GitResult`` the
session reports; :mod:`sandboxes.git_pr` calls this through its ``PullRequestHost``
interface, so the sandbox side never imports GitHub's client.
"""

from __future__ import annotations

from integrations.errors import (
    IntegrationAuthError,
    IntegrationError,
    IntegrationForbiddenError,
    IntegrationNotFoundError,
)
from integrations.github_client import GitHubClient, GitHubPullRequest, GitHubValidationError
from schemas.git import GitCode, GitResult, PullRequestSpec


def _result(code: GitCode, message: str, pr_url: str | None = None) -> GitResult:
    return GitResult(
        action="create_pr", success=code == "SUCCESS", code=code, message=message, pr_url=pr_url
    )


class GitHubPullRequests:
    """Pull requests through one authenticated :class:`GitHubClient`."""

    def __init__(self, github: GitHubClient) -> None:
        self.github = github

    async def open_pull_request(self, spec: PullRequestSpec) -> GitResult:
        """Open ``spec.head`` into ``spec.base_branch`` (default: the repository's default
        branch), or return the pull request already open for that head."""
        try:
            return await self._open(spec)
        except (IntegrationAuthError, IntegrationForbiddenError) as exc:
            return _result("AUTH_FAILED", f"GitHub refused the credentials: {exc.message}")
        except IntegrationNotFoundError:
            where = f"{spec.owner}/{spec.repo}"
            return _result(
                "UNKNOWN_ERROR", f"GitHub repository {where} not found or not visible to the token"
            )
        except IntegrationError as exc:
            return _result("UNKNOWN_ERROR", f"GitHub: {exc.message}")

    async def _open(self, spec: PullRequestSpec) -> GitResult:
        existing = await self._existing(spec)
        if existing:
            return _already_open(existing)
        base = (
            spec.base_branch
            or (await self.github.get_repo(spec.owner, spec.repo)).default_branch
            or "main"
        )
        if base == spec.branch and spec.head.startswith(f"{spec.owner}:"):
            message = f"the branch {spec.branch} is the base branch: create a branch first"
            return _result("UNKNOWN_ERROR", message)
        try:
            pr = await self.github.create_pull_request(
                spec.owner, spec.repo, title=spec.title, head=spec.head, base=base, body=spec.body
            )
        except GitHubValidationError as exc:
            # Lost a race with another creator: GitHub says one exists; return that one.
            if "already exists" in str(exc):
                existing = await self._existing(spec)
                if existing:
                    return _already_open(existing)
            raise
        return _result("SUCCESS", f"opened pull request #{pr.number}", pr.html_url)

    async def _existing(self, spec: PullRequestSpec) -> GitHubPullRequest | None:
        pulls = await self.github.list_pull_requests(
            spec.owner, spec.repo, head=spec.head, state="open", max_pages=1
        )
        return pulls[0] if pulls else None


def _already_open(pr: GitHubPullRequest) -> GitResult:
    return _result("SUCCESS", f"pull request #{pr.number} already exists", pr.html_url)
