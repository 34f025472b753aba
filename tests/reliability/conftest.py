"""Reliability tests: Warren's real parts under failure (actor kills, a NATS restart, a
dispatcher killed mid-batch). The API tests' client and account fixtures are reused."""

from tests.api.conftest import account, new_client  # noqa: F401
