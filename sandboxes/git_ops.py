"""Git operations on a sandbox repo, run through any provider's ``exec``.

Every command goes through an injected :data:`Exec` (argv, cwd) so the same code serves
the local provider and remote ones. git runs non-interactively (no terminal prompt, no
pager, no editor, C locale so error patterns match) and status reads take no optional
locks. A repo is addressed by a :class:`RepoDir` from :func:`resolve_repo_dir`, which
refuses paths that leave the workspace; every operation then checks that git's own
top-level folder lies inside the workspace too (symlinks, or a parent repo above it).

Mutating operations return a :class:`GitResult` and never raise for git failures;
messages are redacted (URL credentials, auth headers, GitHub tokens, the push token).
"""

from __future__ import annotations

import asyncio
import posixpath
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from integrations.errors import (
    IntegrationAuthError,
    IntegrationError,
    IntegrationForbiddenError,
    IntegrationNotFoundError,
)
from integrations.github_client import GitHubClient, GitHubPullRequest, GitHubValidationError
from sandboxes.errors import SandboxError, redact
from sandboxes.git_state import StatusParseError, parse_log, parse_porcelain_v2
from sandboxes.provider import DEFAULT_EXEC_TIMEOUT, SandboxProvider
from schemas.git import GitAction, GitCode, GitResult, GitState
from schemas.sandbox import ExecResult

Exec = Callable[[Sequence[str], str | None], Awaitable[ExecResult]]
"""Runs argv with the given cwd (as the provider understands it) and returns its result."""

MESSAGE_LIMIT = 2000
"""Characters of git's stderr kept in a result message (the tail, where the error is)."""

_BASE_ENV = ("GIT_TERMINAL_PROMPT=0", "GIT_PAGER=cat", "GIT_EDITOR=true", "LC_ALL=C")
_BASE_CONFIG = ("-c", "core.pager=cat", "-c", "color.ui=false", "-c", "core.quotePath=false")
_TOKEN_VAR = "WARREN_GIT_TOKEN"
# Answers git's "get" with the token from this one command's environment; nothing stored.
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    f'printf "username=x-access-token\\npassword=%s\\n" "${_TOKEN_VAR}"; }}; f'
)
# Prints 1/0 per argument: does the path exist? (Paths arrive as arguments, never code.)
_EXISTS_SCRIPT = 'for p in "$@"; do if [ -e "$p" ]; then echo 1; else echo 0; fi; done'
_PROBES = (
    "index.lock",
    "rebase-merge",
    "rebase-apply",
    "MERGE_HEAD",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
)

_GITHUB_TOKEN = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,})\b")
_AUTH_PATTERNS = re.compile(
    r"authentication failed|could not read (?:username|password)|terminal prompts disabled"
    r"|invalid username or password|permission denied \(publickey|http basic: access denied"
    r"|returned error: 40[13]|permission to \S+ denied|repository not found"
    r"|bad credentials|access denied|write access to repository not granted",
    re.IGNORECASE,
)
_SHALLOW_PATTERNS = re.compile(
    r"shallow update not allowed|did not receive expected object|shallow file has changed",
    re.IGNORECASE,
)
_OWNER_REPO = re.compile(r"^[A-Za-z0-9_.-]+$")


class GitError(Exception):
    """A git operation could not run (not a repo, path outside the workspace, exec failed).

    The message is safe to show: it never holds a credential.
    """

    def __init__(self, message: str, code: GitCode = "UNKNOWN_ERROR") -> None:
        super().__init__(safe_message(message))
        self.code: GitCode = code


@dataclass(frozen=True)
class RepoDir:
    """A repo folder as exec cwds: the workspace root and the repo inside it."""

    workspace: str
    path: str


@dataclass(frozen=True)
class _Inspection:
    state: GitState
    oid: str | None
    locked: bool
    """``index.lock`` exists: another git process runs (or died holding it)."""


def safe_message(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with credentials masked and trimmed to its last :data:`MESSAGE_LIMIT` chars."""
    lines = [ln for ln in text.strip().splitlines() if not ln.startswith("hint:")]
    cleaned = _GITHUB_TOKEN.sub("***", redact("\n".join(lines), secrets))
    return cleaned[-MESSAGE_LIMIT:]


def resolve_repo_dir(workspace_root: str, workspace_path: str | None = None) -> RepoDir:
    """The repo at ``workspace_path`` under ``workspace_root``; raises GitError if it escapes.

    ``workspace_root`` is the workspace as the exec callable's cwd sees it: ``"."`` for a
    provider's ``exec`` (whose cwd is workspace-relative), an absolute path otherwise.
    """
    rel = workspace_path or "."
    if "\0" in rel or "\\" in rel or rel.startswith("/"):
        raise GitError(f"workspace path {rel!r} must be relative to the workspace")
    norm = posixpath.normpath(rel)
    if norm == ".." or norm.startswith("../"):
        raise GitError(f"workspace path {rel!r} leaves the workspace")
    root = workspace_root or "."
    return RepoDir(workspace=root, path=posixpath.normpath(posixpath.join(root, norm)))


def provider_exec(
    provider: SandboxProvider, sandbox_id: str, *, timeout: float = DEFAULT_EXEC_TIMEOUT
) -> Exec:
    """An :data:`Exec` running in ``sandbox_id`` (use with ``resolve_repo_dir(".", ...)``)."""

    async def run(argv: Sequence[str], cwd: str | None) -> ExecResult:
        return await provider.exec(sandbox_id, argv, cwd=cwd, timeout=timeout)

    return run


# --- plumbing -------------------------------------------------------------------------------


async def _git(
    exec: Exec,
    cwd: str,
    *args: str,
    read_only: bool = False,
    token: str | None = None,
) -> ExecResult:
    env = list(_BASE_ENV)
    config = list(_BASE_CONFIG)
    if read_only:
        env.append("GIT_OPTIONAL_LOCKS=0")
    if token:
        env.append(f"{_TOKEN_VAR}={token}")
        config += ["-c", "credential.helper=", "-c", f"credential.helper={_CREDENTIAL_HELPER}"]
    return await exec(["env", *env, "git", *config, *args], cwd)


def _err(result: ExecResult) -> str:
    return result.stderr.strip() or result.stdout.strip() or f"exit code {result.exit_code}"


async def _inspect(exec: Exec, repo: RepoDir) -> _Inspection:
    git_paths = [arg for name in _PROBES for arg in ("--git-path", name)]
    pwd, probe = await asyncio.gather(
        exec(["pwd", "-P"], repo.workspace),
        _git(
            exec,
            repo.path,
            "rev-parse",
            "--show-toplevel",
            "--is-shallow-repository",
            *git_paths,
            read_only=True,
        ),
    )
    if probe.exit_code != 0:
        raise GitError(f"not a git repository: {_err(probe)}")
    lines = probe.stdout.splitlines()
    if pwd.exit_code != 0 or len(lines) != 2 + len(_PROBES):
        raise GitError("could not locate the repository in the workspace")
    workspace, toplevel = pwd.stdout.strip().rstrip("/"), lines[0]
    if toplevel != workspace and not toplevel.startswith(workspace + "/"):
        raise GitError("the repository lies outside the workspace")
    exists, status, log = await asyncio.gather(
        exec(["sh", "-c", _EXISTS_SCRIPT, "sh", *lines[2:]], repo.path),
        _git(exec, repo.path, "status", "--porcelain=v2", "--branch", "-z", read_only=True),
        _git(
            exec,
            repo.path,
            "log",
            "-z",
            "-n",
            "10",
            "--no-show-signature",
            "--format=%H%x1f%s",
            read_only=True,
        ),
    )
    flags = exists.stdout.split()
    if exists.exit_code != 0 or len(flags) != len(_PROBES) or status.exit_code != 0:
        raise GitError(f"git status failed: {_err(status if status.exit_code else exists)}")
    try:
        parsed = parse_porcelain_v2(status.stdout)
        commits = parse_log(log.stdout) if parsed.oid and log.exit_code == 0 else ()
    except StatusParseError as exc:
        raise GitError(f"unexpected git status output: {exc}") from None
    if parsed.oid and log.exit_code != 0:
        raise GitError(f"git log failed: {_err(log)}")
    present = dict(zip(_PROBES, (f == "1" for f in flags), strict=True))
    rebase = present["rebase-merge"] or present["rebase-apply"]
    merge = present["MERGE_HEAD"]
    busy = any(present.values())
    state = GitState(
        branch=parsed.head,
        detached=parsed.head is None,
        staged=parsed.staged,
        unstaged=parsed.unstaged,
        untracked=parsed.untracked,
        conflicted=parsed.conflicted,
        commits=commits,
        ahead=parsed.ahead,
        behind=parsed.behind,
        is_shallow=lines[1] == "true",
        is_busy=busy,
        rebase_in_progress=rebase,
        merge_in_progress=merge,
    )
    return _Inspection(state=state, oid=parsed.oid, locked=present["index.lock"])


def _refusal(
    action: GitAction, inspection: _Inspection, *, may_conclude: bool = False
) -> GitResult | None:
    """MERGE_CONFLICT or REPO_BUSY when the repo is in no state to be changed.

    ``may_conclude``: a commit may conclude a merge, cherry-pick or revert whose
    conflicts are resolved (that is how git finishes them); a rebase or a held index
    lock still refuses it.
    """
    state = inspection.state
    if state.conflicted:
        shown = ", ".join(state.conflicted[:10])
        more = f" and {len(state.conflicted) - 10} more" if len(state.conflicted) > 10 else ""
        return _fail(action, "MERGE_CONFLICT", f"resolve the conflicts first: {shown}{more}")
    if inspection.locked:
        why = "another git operation is running or was interrupted (index.lock exists)"
    elif state.rebase_in_progress:
        why = "a rebase is in progress"
    elif not state.is_busy or may_conclude:
        return None
    elif state.merge_in_progress:
        why = "a merge is in progress: commit to conclude it"
    else:
        why = "a cherry-pick or revert is in progress: commit to conclude it"
    return _fail(action, "REPO_BUSY", f"the repository is busy: {why}")


def _fail(action: GitAction, code: GitCode, message: str, secrets: Sequence[str] = ()) -> GitResult:
    return GitResult(
        action=action, success=False, code=code, message=safe_message(message, secrets)
    )


def _ok(action: GitAction, message: str, pr_url: str | None = None) -> GitResult:
    return GitResult(
        action=action, success=True, code="SUCCESS", message=safe_message(message), pr_url=pr_url
    )


# --- status -----------------------------------------------------------------------------------


async def git_status(exec: Exec, repo: RepoDir) -> GitState:
    """The repo's branch, changes, last 10 commits, ahead/behind and busy/shallow flags.

    Read-only: git takes no optional locks. Raises :class:`GitError` when the folder is
    not a repository inside the workspace or exec fails.
    """
    try:
        return (await _inspect(exec, repo)).state
    except SandboxError as exc:
        raise GitError(f"git status failed: {exc}") from None


# --- branch -----------------------------------------------------------------------------------


async def create_branch(exec: Exec, repo: RepoDir, name: str) -> GitResult:
    """Create branch ``name`` from HEAD and switch to it (uncommitted changes follow)."""
    action: GitAction = "create_branch"
    if not name or name.startswith("-") or "@{" in name or "\0" in name or name != name.strip():
        return _fail(action, "INVALID_BRANCH", f"{name!r} is not a valid branch name")
    try:
        refused = _refusal(action, await _inspect(exec, repo))
        if refused:
            return refused
        check = await _git(exec, repo.path, "check-ref-format", "--branch", name)
        if check.exit_code != 0 or check.stdout.strip() != name:
            return _fail(action, "INVALID_BRANCH", f"{name!r} is not a valid branch name")
        exists = await _git(
            exec, repo.path, "rev-parse", "--verify", "--quiet", f"refs/heads/{name}"
        )
        if exists.exit_code == 0:
            return _fail(action, "BRANCH_EXISTS", f"branch {name!r} already exists")
        made = await _git(exec, repo.path, "checkout", "-q", "-b", name)
        if made.exit_code != 0:
            code: GitCode = "BRANCH_EXISTS" if "already exists" in made.stderr else "UNKNOWN_ERROR"
            return _fail(action, code, _err(made))
        return _ok(action, f"created and switched to branch {name}")
    except (GitError, SandboxError) as exc:
        return _fail(action, _code_of(exc), str(exc))


def _code_of(exc: Exception) -> GitCode:
    return exc.code if isinstance(exc, GitError) else "UNKNOWN_ERROR"


# --- commit -----------------------------------------------------------------------------------


def _confined_files(files: Sequence[str]) -> list[str] | str:
    """The paths normalised, or an error message when one leaves the repository."""
    out: list[str] = []
    for path in files:
        norm = posixpath.normpath(path) if path else ""
        if (
            not norm
            or "\0" in path
            or norm.startswith("/")
            or norm == ".."
            or norm.startswith("../")
        ):
            return f"file path {path!r} must be relative and inside the repository"
        out.append(norm)
    return out


async def commit(
    exec: Exec,
    repo: RepoDir,
    message: str,
    *,
    include_untracked: bool = False,
    files: Sequence[str] | None = None,
) -> GitResult:
    """Commit ``files`` only, else every tracked change, else (``include_untracked``) all.

    ``files`` are relative to the repo folder and taken literally (no globs); an empty
    list means "not given". Refuses with NOTHING_TO_COMMIT when nothing would change.
    """
    action: GitAction = "commit"
    if not message.strip() or "\0" in message:
        return _fail(action, "UNKNOWN_ERROR", "the commit message is empty or holds a NUL byte")
    paths: list[str] = []
    if files:
        checked = _confined_files(files)
        if isinstance(checked, str):
            return _fail(action, "UNKNOWN_ERROR", checked)
        paths = checked
    try:
        inspection = await _inspect(exec, repo)
        refused = _refusal(action, inspection, may_conclude=True)
        if refused:
            return refused
        literal = ("--literal-pathspecs",)
        if paths:
            staged = await _git(exec, repo.path, *literal, "add", "-A", "--", *paths)
        elif include_untracked:
            staged = await _git(exec, repo.path, "add", "-A")
        else:
            staged = await _git(exec, repo.path, "add", "-u")
        if staged.exit_code != 0:
            return _fail(action, "UNKNOWN_ERROR", f"staging failed: {_err(staged)}")
        pathspec = ("--", *paths) if paths else ()
        diff = await _git(exec, repo.path, *literal, "diff", "--cached", "--quiet", *pathspec)
        # Concluding a merge records its second parent even when the tree is unchanged.
        if diff.exit_code == 0 and not inspection.state.merge_in_progress:
            return _fail(action, "NOTHING_TO_COMMIT", "nothing to commit")
        if diff.exit_code not in (0, 1):
            return _fail(action, "UNKNOWN_ERROR", _err(diff))
        done = await _git(exec, repo.path, *literal, "commit", "-q", "-m", message, *pathspec)
        if done.exit_code != 0:
            return _fail(action, "UNKNOWN_ERROR", _commit_error(done))
        head = await _git(
            exec, repo.path, "log", "-n", "1", "--no-show-signature", "--format=%h %s"
        )
        return _ok(action, f"committed {head.stdout.strip()}")
    except (GitError, SandboxError) as exc:
        return _fail(action, _code_of(exc), str(exc))


def _commit_error(result: ExecResult) -> str:
    text = _err(result)
    if "tell me who you are" in text or "identity unknown" in text.lower():
        return "git has no author identity: set user.name and user.email"
    return f"commit failed: {text}"


# --- push -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pushed:
    result: GitResult
    remote: str | None = None
    branch: str | None = None


async def push(exec: Exec, repo: RepoDir, *, token: str | None = None) -> GitResult:
    """Push the current branch: to its upstream if it tracks a same-named remote branch,
    else to ``origin`` with the upstream set. A shallow clone the remote refuses is
    deepened (``git fetch --unshallow``) and the push retried once.

    ``token``, when given, answers git's https credential request for this push only.
    """
    return (await _push(exec, repo, "push", token)).result


async def _push(exec: Exec, repo: RepoDir, action: GitAction, token: str | None) -> _Pushed:
    secrets = (token,) if token else ()
    try:
        inspection = await _inspect(exec, repo)
        refused = _refusal(action, inspection)
        if refused:
            return _Pushed(result=refused)
        branch = inspection.state.branch
        if branch is None:
            return _Pushed(
                result=_fail(action, "UNKNOWN_ERROR", "HEAD is detached: create a branch first")
            )
        if inspection.oid is None:
            return _Pushed(
                result=_fail(action, "NOTHING_TO_COMMIT", f"branch {branch} has no commits to push")
            )
        target = await _push_target(exec, repo, branch)
        if isinstance(target, GitResult):
            return _Pushed(result=_with_action(target, action))
        remote, set_upstream = target
        refspec = f"refs/heads/{branch}:refs/heads/{branch}"
        argv = (
            ("push", "--set-upstream", remote, refspec)
            if set_upstream
            else ("push", remote, refspec)
        )
        pushed = await _git(exec, repo.path, *argv, token=token)
        note = ""
        if (
            pushed.exit_code != 0
            and inspection.state.is_shallow
            and _SHALLOW_PATTERNS.search(pushed.stderr)
        ):
            source = (
                "origin"
                if remote == "origin" or await _has_remote(exec, repo, "origin")
                else remote
            )
            deepen = await _git(
                exec, repo.path, "fetch", "--quiet", "--unshallow", source, token=token
            )
            if deepen.exit_code != 0:
                msg = f"the clone is shallow and fetching its history failed: {_err(deepen)}"
                return _Pushed(result=_fail(action, "SHALLOW_PUSH_FAILED", msg, secrets))
            pushed = await _git(exec, repo.path, *argv, token=token)
            if pushed.exit_code != 0 and _SHALLOW_PATTERNS.search(pushed.stderr):
                msg = f"the remote refuses the shallow history: {_err(pushed)}"
                return _Pushed(result=_fail(action, "SHALLOW_PUSH_FAILED", msg, secrets))
            note = " (after fetching the full history of the shallow clone)"
        if pushed.exit_code != 0:
            return _Pushed(result=_push_failure(action, pushed, secrets))
        upstream = " and set it as upstream" if set_upstream else ""
        return _Pushed(
            result=_ok(action, f"pushed {branch} to {remote}{upstream}{note}"),
            remote=remote,
            branch=branch,
        )
    except (GitError, SandboxError) as exc:
        return _Pushed(result=_fail(action, _code_of(exc), str(exc), secrets))


async def _has_remote(exec: Exec, repo: RepoDir, name: str) -> bool:
    remotes = await _git(exec, repo.path, "remote", read_only=True)
    return name in remotes.stdout.split()


async def _push_target(exec: Exec, repo: RepoDir, branch: str) -> tuple[str, bool] | GitResult:
    """(remote, set upstream?) for ``branch``, or NO_REMOTE."""
    listed, tracking = await asyncio.gather(
        _git(exec, repo.path, "remote", read_only=True),
        _git(
            exec,
            repo.path,
            "for-each-ref",
            "--format=%(refname)%00%(upstream:remotename)%00%(upstream:remoteref)",
            f"refs/heads/{branch}",
            read_only=True,
        ),
    )
    if listed.exit_code != 0 or tracking.exit_code != 0:
        raise GitError(
            f"reading the remotes failed: {_err(listed if listed.exit_code else tracking)}"
        )
    remotes = listed.stdout.split()
    for line in tracking.stdout.splitlines():
        ref, _, rest = line.partition("\0")
        remote, _, merge = rest.partition("\0")
        if ref == f"refs/heads/{branch}" and remote in remotes and merge == f"refs/heads/{branch}":
            return remote, False
    if "origin" in remotes:
        return "origin", True
    message = "no 'origin' remote is configured" if remotes else "the repository has no remote"
    return _fail("push", "NO_REMOTE", message)


def _push_failure(action: GitAction, result: ExecResult, secrets: Sequence[str]) -> GitResult:
    text = _err(result)
    if _AUTH_PATTERNS.search(text):
        return _fail(action, "AUTH_FAILED", f"the remote refused the credentials: {text}", secrets)
    if "non-fast-forward" in text or "fetch first" in text:
        return _fail(
            action,
            "UNKNOWN_ERROR",
            f"the remote has commits this branch lacks; pull first: {text}",
            secrets,
        )
    return _fail(action, "UNKNOWN_ERROR", f"push failed: {text}", secrets)


def _with_action(result: GitResult, action: GitAction) -> GitResult:
    return GitResult(
        action=action,
        success=result.success,
        code=result.code,
        message=result.message,
        pr_url=result.pr_url,
    )


# --- pull requests ----------------------------------------------------------------------------


def parse_github_remote(url: str) -> tuple[str, str] | None:
    """(owner, repo) from an https, ssh or scp-style (``git@host:o/r.git``) remote URL."""
    url = url.strip()
    if "://" in url:
        scheme, _, rest = url.partition("://")
        if scheme not in ("https", "http", "ssh", "git"):
            return None
        path = rest.partition("/")[2]
    elif re.match(r"^[^/:]+:", url):
        path = url.partition(":")[2]
    else:
        return None
    parts = [p for p in path.split("/") if p]
    if len(parts) != 2:
        return None
    owner, name = parts[0], parts[1].removesuffix(".git")
    if not (_OWNER_REPO.match(owner) and _OWNER_REPO.match(name)) or name in (".", ".."):
        return None
    return owner, name


async def _remote_url(exec: Exec, repo: RepoDir, remote: str) -> str | None:
    # The configured URL, not ``remote get-url``: that one applies insteadOf rewrites.
    got = await _git(exec, repo.path, "config", "--get", f"remote.{remote}.url", read_only=True)
    return got.stdout.strip() if got.exit_code == 0 and got.stdout.strip() else None


async def create_pr(
    exec: Exec,
    repo: RepoDir,
    github: GitHubClient,
    *,
    title: str,
    body: str | None = None,
    base_branch: str | None = None,
    token: str | None = None,
) -> GitResult:
    """Push the branch, then open a pull request on the ``origin`` GitHub repository.

    The base defaults to the repository's default branch. An open pull request for the
    branch is returned as is (success). GitHub refusing the token maps to AUTH_FAILED.
    """
    action: GitAction = "create_pr"
    secrets = (token,) if token else ()
    try:
        origin = await _remote_url(exec, repo, "origin")
    except (GitError, SandboxError) as exc:
        return _fail(action, _code_of(exc), str(exc), secrets)
    if origin is None:
        return _fail(action, "NO_REMOTE", "no 'origin' remote is configured")
    target = parse_github_remote(origin)
    if target is None:
        return _fail(
            action, "UNKNOWN_ERROR", f"origin is not a GitHub repository URL: {origin}", secrets
        )
    pushed = await _push(exec, repo, action, token)
    if not pushed.result.success or pushed.branch is None or pushed.remote is None:
        return pushed.result
    owner, name = target
    head_owner = owner
    if pushed.remote != "origin":
        fork_url = await _remote_url(exec, repo, pushed.remote)
        fork = parse_github_remote(fork_url) if fork_url else None
        head_owner = fork[0] if fork else owner
    try:
        return await _open_pr(
            github,
            owner,
            name,
            f"{head_owner}:{pushed.branch}",
            pushed.branch,
            title,
            body,
            base_branch,
        )
    except (IntegrationAuthError, IntegrationForbiddenError) as exc:
        return _fail(
            action, "AUTH_FAILED", f"GitHub refused the credentials: {exc.message}", secrets
        )
    except IntegrationNotFoundError:
        return _fail(
            action,
            "UNKNOWN_ERROR",
            f"GitHub repository {owner}/{name} not found or not visible to the token",
        )
    except IntegrationError as exc:
        return _fail(action, "UNKNOWN_ERROR", f"GitHub: {exc.message}", secrets)


async def _open_pr(
    github: GitHubClient,
    owner: str,
    name: str,
    head: str,
    branch: str,
    title: str,
    body: str | None,
    base_branch: str | None,
) -> GitResult:
    existing = await _existing_pr(github, owner, name, head)
    if existing:
        return _ok(
            "create_pr", f"pull request #{existing.number} already exists", existing.html_url
        )
    base = base_branch or (await github.get_repo(owner, name)).default_branch or "main"
    if base == branch and head.startswith(f"{owner}:"):
        return _fail(
            "create_pr",
            "UNKNOWN_ERROR",
            f"the branch {branch} is the base branch: create a branch first",
        )
    try:
        pr = await github.create_pull_request(
            owner, name, title=title, head=head, base=base, body=body
        )
    except GitHubValidationError as exc:
        # Lost a race with another creator: GitHub says one exists; return that one.
        if "already exists" in str(exc):
            existing = await _existing_pr(github, owner, name, head)
            if existing:
                return _ok(
                    "create_pr",
                    f"pull request #{existing.number} already exists",
                    existing.html_url,
                )
        raise
    return _ok("create_pr", f"opened pull request #{pr.number}", pr.html_url)


async def _existing_pr(
    github: GitHubClient, owner: str, name: str, head: str
) -> GitHubPullRequest | None:
    pulls = await github.list_pull_requests(owner, name, head=head, state="open", max_pages=1)
    return pulls[0] if pulls else None
