"""Sandbox errors, and the redaction that keeps secret values out of their messages."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable

from schemas.sandbox import CreateSandboxOptions, SecretFile

REDACTED = "***"

# Values shorter than this are not treated as secrets: redacting "1" or "yes" everywhere
# would garble every message while protecting nothing.
MIN_SECRET_LENGTH = 4

# ``scheme://user:password@host`` — credentials embedded in any URL.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")
# ``Authorization: Bearer xyz`` / ``Basic xyz`` that a tool may echo back.
_AUTH_HEADER = re.compile(r"(?i)(authorization:\s*(?:bearer|basic|token)\s+)\S+")


class SandboxError(Exception):
    """A sandbox operation failed. The message never holds a secret value.

    ``secrets`` are the values to mask; URL credentials and authorization headers are
    always masked, whatever the caller passes.
    """

    def __init__(self, message: str, *, secrets: Iterable[str] = ()) -> None:
        super().__init__(redact(message, secrets))


class SandboxNotFound(SandboxError):
    """The sandbox does not exist (or no longer does)."""


class ExecTimeout(SandboxError):
    """A command run with ``exec`` outlived its timeout and was killed."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret value, URL credential and auth header masked."""
    values = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
    # Also the URL-encoded forms: a token pasted into a URL is usually quoted.
    values |= {urllib.parse.quote(s, safe="") for s in list(values)}
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _URL_USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", text)
    return _AUTH_HEADER.sub(lambda m: m.group(1) + REDACTED, text)


def secrets_of_files(files: Iterable[SecretFile]) -> frozenset[str]:
    """Every value held by ``files``."""
    return frozenset(v for f in files for v in f.values.values())


def secrets_of(opts: CreateSandboxOptions) -> frozenset[str]:
    """Every secret value a create request carries: env values, tokens, secret files, keys."""
    values: set[str] = set(opts.env_vars.values())
    values.update(repo.token for repo in opts.repos if repo.token)
    values.update(secrets_of_files(opts.secret_files))
    values.update(v for v in (opts.sandbox_token, opts.agent_config.api_key) if v)
    return frozenset(values)
