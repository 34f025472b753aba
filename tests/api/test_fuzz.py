"""Schemathesis over ``/openapi.json``: generated requests, with and without a real API key,
never get a 5xx.

Bounded so the suite stays fast on 2 cores: a fixed number of examples per operation, a
fixed seed, no shrinking, one worker; a run that overstays its budget is stopped and fails.
(Schemathesis's own ``--max-time`` is not a cap: fuzzing repeats until it is spent.)
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.api.accounts import PASSWORD

EXAMPLES = 4
BUDGET_SECONDS = 300


@pytest.fixture(scope="module")
async def api_key(api_url: str) -> str:
    """A real API key of a freshly signed-up user's personal org."""
    email = f"fuzz-{uuid.uuid4().hex[:10]}@example.test"
    async with aiohttp.ClientSession(api_url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as web:
        payload = {"email": email, "password": PASSWORD, "name": "Fuzz"}
        async with web.post("/api/auth/sign-up", json=payload) as resp:
            assert resp.status == 201, await resp.text()
        async with web.post("/api/api-keys", json={"name": "fuzz"}) as resp:
            assert resp.status == 201, await resp.text()
            key: str = (await resp.json())["key"]
    return key


async def _schemathesis(api_url: str, tmp_path: Path, *headers: str) -> tuple[int, str]:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is a dev dependency"
    args = [
        "run",
        f"{api_url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "1",
        "--no-shrink",
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "60",
        "--suppress-health-check",
        "all",
        "--report-dir",
        str(tmp_path),
        "--warnings",
        "off",
    ]
    for header in headers:
        args += ["--header", header]
    proc = await asyncio.create_subprocess_exec(
        st, *args, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), BUDGET_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"schemathesis ran longer than {BUDGET_SECONDS} s")
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def test_no_server_error_with_an_api_key(api_url: str, api_key: str, tmp_path: Path) -> None:
    code, out = await _schemathesis(api_url, tmp_path, f"Authorization: Bearer {api_key}")
    assert code == 0, out


async def test_no_server_error_anonymously(api_url: str, tmp_path: Path) -> None:
    code, out = await _schemathesis(api_url, tmp_path)
    assert code == 0, out
