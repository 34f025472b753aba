"""API-test fixtures: extra clients with their own cookie jars, and signed-up accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from tests.api.accounts import Account, sign_up

ClientFactory = Callable[[], aiohttp.ClientSession]
AccountFactory = Callable[..., Awaitable[Account]]


@pytest.fixture
async def new_client(api_url: str) -> AsyncIterator[ClientFactory]:
    """Make HTTP clients on the API, each with an empty cookie jar; closed after the test."""
    made: list[aiohttp.ClientSession] = []

    def make() -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(api_url, cookie_jar=aiohttp.CookieJar(unsafe=True))
        made.append(session)
        return session

    yield make
    for session in made:
        await session.close()


@pytest.fixture
def account(new_client: ClientFactory) -> AccountFactory:
    """Sign up a fresh user on a fresh client."""

    async def factory(name: str = "Tess Ter") -> Account:
        return await sign_up(new_client(), name)

    return factory
