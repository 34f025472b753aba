"""Validation of the repositories a session asks to clone (``repos`` on session create).

Accepted URLs: ``https://host/path``, ``ssh://[user@]host[:port]/path`` and scp-style
``user@host:path``; with the local sandbox provider also ``file:///path`` and absolute
local paths. Refused: credentials in the URL (they would be stored in the session row),
other schemes (``http``, ``git``), git's ``<transport>::<address>`` form (``ext::`` runs
commands), relative paths, and anything with whitespace or control characters.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from collections.abc import Sequence

from api.errors import ApiError
from schemas.sessions import SessionRepo

_SCP = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")
_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f\\]")


def url_problem(url: str, *, allow_local: bool) -> str | None:
    """Why ``url`` may not be cloned, or ``None`` when it may."""
    if _BAD_CHARS.search(url) or url.startswith("-"):
        return "must not contain whitespace, control characters or backslashes"
    if "::" in url.partition("://")[0]:
        return "git transport prefixes (<transport>::) are not allowed"
    if "://" in url:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "file":
            if not allow_local:
                return "file:// URLs are only allowed with the local sandbox provider"
            return None if parts.path.startswith("/") and not parts.netloc else "bad file:// URL"
        if parts.scheme not in ("https", "ssh"):
            return "the URL must be https, ssh or scp-style (user@host:path)"
        userinfo, at, host = parts.netloc.rpartition("@")
        if not host or not parts.path.strip("/"):
            return "the URL needs a host and a repository path"
        if at and (parts.scheme == "https" or ":" in userinfo):
            return "credentials in the URL are not allowed"
        return None
    if _SCP.match(url):
        return None
    if url.startswith("/"):
        return None if allow_local else "local paths are only allowed with the local provider"
    return "the URL must be https, ssh or scp-style (user@host:path)"


def workspace_path_problem(path: str) -> str | None:
    """Why ``path`` is not a folder inside the workspace, or ``None``."""
    norm = posixpath.normpath(path)
    if _BAD_CHARS.search(path) or norm.startswith("/") or norm == ".." or norm.startswith("../"):
        return "must be a relative folder inside the workspace"
    return None


def check_repos(repos: Sequence[SessionRepo], *, allow_local: bool) -> tuple[SessionRepo, ...]:
    """``repos`` with normalised workspace paths; raises a 400 ApiError on the first problem."""
    out: list[SessionRepo] = []
    for i, repo in enumerate(repos):
        problem = url_problem(repo.url, allow_local=allow_local)
        if problem:
            raise ApiError(400, f"repos[{i}].url: {problem}", field="repos")
        problem = workspace_path_problem(repo.workspace_path)
        if problem:
            raise ApiError(400, f"repos[{i}].workspace_path: {problem}", field="repos")
        branch = repo.branch
        if branch is not None and (branch.startswith("-") or _BAD_CHARS.search(branch)):
            raise ApiError(400, f"repos[{i}].branch is not a valid branch name", field="repos")
        path = posixpath.normpath(repo.workspace_path)
        out.append(SessionRepo(url=repo.url, branch=branch, workspace_path=path))
    paths = [r.workspace_path for r in out]
    if len(out) > 1 and "." in paths:
        raise ApiError(400, "with several repos, each needs its own workspace_path", field="repos")
    if len(set(paths)) != len(paths):
        raise ApiError(400, "two repos share a workspace_path", field="repos")
    return tuple(out)
