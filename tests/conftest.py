"""Session-wide real services: Postgres, NATS, Ray and the Serve app, started once."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from core.ray_env import start_local_ray
from core.settings import Settings
from deploy.net import free_port
from deploy.scratch import create_database, drop_database, nats_server, postgres_server
from llm.scripted import ScriptedModelServer, run_scripted_model
from schemas.llm import Script


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch folder for the whole test session."""
    return tmp_path_factory.mktemp("warren")


@pytest.fixture(scope="session")
def pg_admin_dsn(work_dir: Path) -> Iterator[str]:
    """DSN of a Postgres server on which the session may create databases."""
    with postgres_server(work_dir) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def nats_url(work_dir: Path) -> Iterator[str]:
    """URL of a NATS server with JetStream."""
    with nats_server(work_dir) as url:
        yield url


@pytest.fixture(scope="session")
async def database_url(pg_admin_dsn: str) -> AsyncIterator[str]:
    """A fresh database for this test run, dropped at the end."""
    dsn = await create_database(pg_admin_dsn)
    yield dsn
    await drop_database(pg_admin_dsn, dsn)


@pytest.fixture(scope="session")
async def scripted_model() -> AsyncIterator[ScriptedModelServer]:
    """The model every session of the test run reaches (``settings.llm_base_url``).

    It answers ``Script()`` (always "Done.") until a test sets the script it needs with
    :func:`tests.fixtures.llm.use_script`; it is the scripted model, not an LLM.
    """
    async with run_scripted_model(Script(), host="127.0.0.1") as server:  # a free port
        yield server


@pytest.fixture(scope="session")
async def settings(
    database_url: str, nats_url: str, work_dir: Path, scripted_model: ScriptedModelServer
) -> Settings:
    """Settings of the Warren under test: its own database, NATS prefix, port and data dir,
    and the session-wide scripted model as the agent's model."""
    return Settings(
        secret_key=secrets.token_hex(32),
        database_url=database_url,
        nats_url=nats_url,
        nats_prefix=f"wt{secrets.token_hex(4)}",
        http_port=free_port(),
        data_dir=str(work_dir / "data"),
        max_body_bytes=65536,
        nats_stream_max_bytes=64 * 1024**2,
        log_level="WARNING",
        llm_base_url=scripted_model.base_url,
        llm_model="scripted",
        nango_secret_key=secrets.token_hex(16),
    )


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test database (migrations are applied by the app or by tests)."""
    from core.db import create_pool

    pool = await create_pool(settings.database_url, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """Ray started once per test session: 2 CPUs, loopback, no dashboard."""
    import ray

    start_local_ray()
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def api_url(ray_cluster: None, settings: Settings) -> Iterator[str]:
    """Base URL of the real Serve app, deployed once for the session."""
    from ray import serve

    from deploy.serve import run_warren

    run_warren(settings)
    yield f"http://127.0.0.1:{settings.http_port}"
    serve.shutdown()  # type: ignore[no-untyped-call]


@pytest.fixture
async def http(api_url: str) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client on the API with its own cookie jar."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(api_url, cookie_jar=jar) as session:
        yield session


@pytest.fixture(scope="session", autouse=True)
async def _delete_test_streams(settings: Settings) -> AsyncIterator[None]:
    """Remove this run's JetStream streams from a shared NATS at the end."""
    yield
    from core.stream_cleanup import delete_streams

    await delete_streams(settings.nats_url, settings.nats_prefix)


@pytest.fixture(scope="session", autouse=True)
async def _terminate_test_sandboxes(settings: Settings) -> AsyncIterator[None]:
    """End the local sandboxes sessions started during the run (they outlive Ray)."""
    yield
    from sandboxes.local import LocalSandboxProvider

    await LocalSandboxProvider.from_data_dir(Path(settings.data_dir)).terminate_all()
