"""Helpers for the local-provider tests: real git repos, file hashes, a /proc scan.

The /proc scan here is written independently of ``sandboxes.proctree`` so a bug there
cannot hide itself in the tests.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

GIT_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` with a clean environment; returns stdout."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    )
    return done.stdout


def make_repo(path: Path) -> Path:
    """A repo with ``README.md``, ``src/app.py`` on ``main`` and ``feature.txt`` on ``feature``."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# demo\n")
    (path / "src").mkdir()
    (path / "src" / "app.py").write_text("print('hi')\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "init")
    git(path, "checkout", "-qb", "feature")
    (path / "feature.txt").write_text("only on feature\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "feature")
    git(path, "checkout", "-q", "main")
    return path


def tree_digest(root: Path) -> dict[str, str]:
    """Path → content hash (files, with the exec bit), link target (symlinks), 'dir'."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                out[rel] = "link:" + os.readlink(path)
            elif stat.S_ISDIR(info.st_mode):
                out[rel] = "dir"
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                out[rel] = f"{digest}:{'x' if info.st_mode & stat.S_IXUSR else '-'}"
    return out


def processes_pointing_into(folder: Path) -> list[int]:
    """Live (non-zombie) pids whose cwd or any environment value lies inside ``folder``."""
    needle = str(folder).encode()
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        base = f"/proc/{entry}"
        try:
            with open(f"{base}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
            if state in (b"Z", b"X"):
                continue
            cwd = os.readlink(f"{base}/cwd").encode()
            with open(f"{base}/environ", "rb") as handle:
                environ = handle.read()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if cwd.startswith(needle) or b"=" + needle in environ:
            found.append(int(entry))
    return found


def group_exists(pgid: int) -> bool:
    """True if any process is still in process group ``pgid`` (zombies excluded)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def environ_of(pid: int) -> dict[str, str]:
    """The real environment of a running process."""
    with open(f"/proc/{pid}/environ", "rb") as handle:
        raw = handle.read().decode(errors="replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def process_gone(pid: int) -> bool:
    """True if ``pid`` no longer runs (exited, or a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in (b"Z", b"X")
