"""Parsers for ``git status --porcelain=v2 --branch -z`` and ``git log -z`` output.

Pure functions: no git, no I/O. Porcelain v2 is git's stable machine format; with ``-z``
every record ends in NUL and paths are raw (never quoted), and a rename record is followed
by a second NUL-terminated field holding the original path.
"""

from __future__ import annotations

import msgspec

from schemas.git import FileChange, GitCommit, GitFile

MAX_COMMITS = 10

_CHANGES: dict[str, FileChange] = {
    "M": "modified",
    "T": "type_changed",
    "A": "added",
    "D": "deleted",
    "R": "renamed",
    "C": "copied",
}


class PorcelainStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What ``git status --porcelain=v2 --branch -z`` says."""

    oid: str | None = None
    """HEAD's commit; ``None`` on an unborn branch (no commit yet)."""
    head: str | None = None
    """The branch name; ``None`` when detached."""
    upstream: str | None = None
    """``<remote>/<branch>`` when one is configured (even if the remote branch is gone)."""
    ahead: int | None = None
    behind: int | None = None
    staged: tuple[GitFile, ...] = ()
    unstaged: tuple[GitFile, ...] = ()
    untracked: tuple[str, ...] = ()
    conflicted: tuple[str, ...] = ()


class StatusParseError(ValueError):
    """The output is not porcelain v2."""


def _change(code: str, path: str, orig: str | None) -> GitFile:
    status = _CHANGES.get(code)
    if status is None:
        raise StatusParseError(f"unknown change code {code!r}")
    return GitFile(
        path=path, status=status, orig_path=orig if status in ("renamed", "copied") else None
    )


def parse_porcelain_v2(output: str) -> PorcelainStatus:
    """Parse ``git status --porcelain=v2 --branch -z``; raises StatusParseError if malformed."""
    records = output.split("\0")
    if records and records[-1] == "":
        records.pop()
    headers: dict[str, str] = {}
    staged: list[GitFile] = []
    unstaged: list[GitFile] = []
    untracked: list[str] = []
    conflicted: list[str] = []
    i = 0
    while i < len(records):
        record = records[i]
        i += 1
        kind, _, rest = record.partition(" ")
        if kind == "#":
            key, _, value = rest.partition(" ")
            headers[key] = value
        elif kind in ("1", "2"):
            # 1 XY sub mH mI mW hH hI path / 2 XY sub mH mI mW hH hI Xscore path \0 orig
            fields = rest.split(" ", 7 if kind == "1" else 8)
            if len(fields) != (8 if kind == "1" else 9) or len(fields[0]) != 2:
                raise StatusParseError(f"malformed change record {record!r}")
            orig: str | None = None
            if kind == "2":
                if i >= len(records):
                    raise StatusParseError("rename record without its original path")
                orig = records[i]
                i += 1
            x, y = fields[0][0], fields[0][1]
            path = fields[-1]
            if x != ".":
                staged.append(_change(x, path, orig))
            if y != ".":
                unstaged.append(_change(y, path, orig))
        elif kind == "u":
            # u XY sub m1 m2 m3 mW h1 h2 h3 path
            fields = rest.split(" ", 9)
            if len(fields) != 10:
                raise StatusParseError(f"malformed unmerged record {record!r}")
            conflicted.append(fields[-1])
        elif kind == "?":
            untracked.append(rest)
        elif kind == "!":
            continue
        else:
            raise StatusParseError(f"unknown record {record[:40]!r}")
    return _with_branch(
        headers,
        PorcelainStatus(
            staged=tuple(staged),
            unstaged=tuple(unstaged),
            untracked=tuple(untracked),
            conflicted=tuple(conflicted),
        ),
    )


def _with_branch(headers: dict[str, str], files: PorcelainStatus) -> PorcelainStatus:
    oid = headers.get("branch.oid")
    head = headers.get("branch.head")
    ahead = behind = None
    ab = headers.get("branch.ab", "").split()
    if len(ab) == 2 and ab[0].startswith("+") and ab[1].startswith("-"):
        ahead, behind = int(ab[0][1:]), int(ab[1][1:])
    return msgspec.structs.replace(
        files,
        oid=None if oid in (None, "(initial)") else oid,
        head=None if head in (None, "(detached)") else head,
        upstream=headers.get("branch.upstream"),
        ahead=ahead,
        behind=behind,
    )


def parse_log(output: str, limit: int = MAX_COMMITS) -> tuple[GitCommit, ...]:
    """Parse ``git log -z --format=%H%x1f%s``: newest first, at most ``limit``."""
    commits: list[GitCommit] = []
    for record in output.split("\0"):
        record = record.strip("\n")
        if not record:
            continue
        sha, sep, subject = record.partition("\x1f")
        if not sep:
            raise StatusParseError(f"malformed log record {record[:60]!r}")
        commits.append(GitCommit(sha=sha, subject=subject))
    return tuple(commits[:limit])
