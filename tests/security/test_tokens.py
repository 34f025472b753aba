"""WebSocket, service and sandbox tokens, API keys, session tokens and the operator CLI."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import time
from pathlib import Path

import pytest

from security import tokens

SECRET = "k" * 48
ROOT = Path(__file__).resolve().parents[2]


def test_ws_token_round_trip() -> None:
    token, exp = tokens.mint_ws_token(SECRET, "user-1", "org-1", 300, now=10_000)
    assert exp == 10_300
    claims = tokens.verify_ws_token(SECRET, token, now=10_299)
    assert (claims.sub, claims.org, claims.iat, claims.exp, claims.typ) == (
        "user-1",
        "org-1",
        10_000,
        10_300,
        "ws",
    )


def test_ws_token_expires() -> None:
    token, _ = tokens.mint_ws_token(SECRET, "u", "o", 10, now=int(time.time()) - 60)
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.verify_ws_token(SECRET, token)


def test_service_token_default_lifetime_is_an_hour() -> None:
    token = tokens.mint_service_token(SECRET, "scheduler", now=1_000)
    claims = tokens.verify_service_token(SECRET, token, now=1_001)
    assert (claims.sub, claims.typ, claims.exp - claims.iat) == ("scheduler", "service", 3600)
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.verify_service_token(SECRET, token, now=4_600)


def test_ws_and_service_tokens_are_not_interchangeable() -> None:
    ws, _ = tokens.mint_ws_token(SECRET, "u", "o", 300, now=1_000)
    service = tokens.mint_service_token(SECRET, "svc", now=1_000)
    with pytest.raises(tokens.TokenError):
        tokens.verify_service_token(SECRET, ws, now=1_001)
    with pytest.raises(tokens.TokenError):
        tokens.verify_ws_token(SECRET, service, now=1_001)


def test_empty_service_name_is_refused() -> None:
    with pytest.raises(ValueError):
        tokens.mint_service_token(SECRET, "")


def test_sandbox_token_is_the_documented_hmac() -> None:
    expected = hmac.new(SECRET.encode(), b"sandbox:sess-1", hashlib.sha256).hexdigest()
    assert tokens.sandbox_token(SECRET, "sess-1") == expected


def test_sandbox_token_verifies_only_for_its_session_and_secret() -> None:
    token = tokens.sandbox_token(SECRET, "sess-1")
    assert tokens.verify_sandbox_token(SECRET, "sess-1", token)
    assert not tokens.verify_sandbox_token(SECRET, "sess-2", token)
    assert not tokens.verify_sandbox_token("x" * 48, "sess-1", token)
    assert not tokens.verify_sandbox_token(SECRET, "sess-1", token.upper())
    assert not tokens.verify_sandbox_token(SECRET, "sess-1", "")
    assert not tokens.verify_sandbox_token(SECRET, "sess-1", "é" * 64)


def test_api_key_shape_prefix_and_hash() -> None:
    new = tokens.generate_api_key()
    assert new.key.startswith("wk_") and len(new.key) > 40
    assert new.prefix == new.key[:11] and new.prefix.startswith("wk_")
    assert new.key_hash == hashlib.sha256(new.key.encode()).digest()
    assert tokens.hash_api_key(new.key) == new.key_hash
    assert tokens.looks_like_api_key(new.key)
    assert not tokens.looks_like_api_key("eyJ.a.b")
    assert new.key not in repr(new)
    assert tokens.generate_api_key().key != new.key


def test_session_tokens_are_random_and_hashed() -> None:
    token, digest = tokens.new_session_token()
    assert digest == hashlib.sha256(token.encode()).digest() == tokens.hash_session_token(token)
    assert tokens.new_session_token()[0] != token


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "security.tokens", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_prints_a_service_token() -> None:
    result = _cli(["service", "scheduler", "--ttl", "120"], {"WARREN_SECRET_KEY": SECRET})
    assert result.returncode == 0, result.stderr
    claims = tokens.verify_service_token(SECRET, result.stdout.strip())
    assert claims.sub == "scheduler" and claims.exp - claims.iat == 120


def test_cli_without_secret_names_the_variable() -> None:
    result = _cli(["service", "scheduler"], {})
    assert result.returncode == 2
    assert "WARREN_SECRET_KEY" in result.stderr and result.stdout == ""
