"""Every credential Warren mints: WebSocket and service JWTs, sandbox tokens, API keys and
browser-session tokens.

- WebSocket token: HS256 JWT ``{sub: user id, org, iat, exp, typ: "ws"}``, short-lived.
- Preview token: HS256 JWT ``{sub: session id, org, target: "port-<N>", iat, exp,
  typ: "preview"}``: opens one session's preview port through the proxy, read-only.
- Service token: HS256 JWT ``{sub: service name, iat, exp, typ: "service"}``, minted by an
  operator with ``python -m security.tokens service <name> [--ttl SECONDS]``.
- Sandbox token: hex HMAC-SHA256(secret, ``"sandbox:" + session_id``); derived on demand,
  never stored, verified in constant time.
- API key: ``wk_<random>``; a short visible prefix is kept for display, only the SHA-256 of
  the key is stored.
- Browser session token: random, lives in the cookie; only its SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import secrets
import sys
import time
from dataclasses import dataclass

from schemas.auth import ServiceClaims, WsClaims
from schemas.shares import PreviewClaims
from security import jwt
from security.jwt import TokenError

__all__ = [
    "API_KEY_PREFIX",
    "NewApiKey",
    "TokenError",
    "generate_api_key",
    "hash_api_key",
    "hash_session_token",
    "looks_like_api_key",
    "mint_preview_token",
    "mint_service_token",
    "mint_ws_token",
    "new_session_token",
    "sandbox_token",
    "verify_preview_token",
    "verify_sandbox_token",
    "verify_service_token",
    "verify_ws_token",
]

API_KEY_PREFIX = "wk_"
# "wk_" plus 8 characters is shown in listings so a user can tell keys apart.
API_KEY_VISIBLE_CHARS = len(API_KEY_PREFIX) + 8
SERVICE_TOKEN_TTL_SECONDS = 3600


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


# --- JWTs -----------------------------------------------------------------------------------


def mint_ws_token(
    secret: str, user_id: str, org_id: str, ttl_seconds: int, *, now: int | None = None
) -> tuple[str, int]:
    """A WebSocket token for ``user_id`` acting in ``org_id``; returns (token, exp unix time)."""
    iat = _now(now)
    claims = WsClaims(sub=user_id, org=org_id, iat=iat, exp=iat + ttl_seconds)
    return jwt.encode(claims, secret), claims.exp


def verify_ws_token(secret: str, token: str, *, now: int | None = None) -> WsClaims:
    """The claims of a valid, unexpired WebSocket token; :class:`TokenError` otherwise."""
    return jwt.decode(token, secret, WsClaims, now=now)


def mint_preview_token(
    secret: str,
    session_id: str,
    org_id: str,
    target: str,
    ttl_seconds: int,
    *,
    now: int | None = None,
) -> tuple[str, int]:
    """A preview token for ``target`` of ``session_id`` in ``org_id``; returns (token, exp)."""
    iat = _now(now)
    claims = PreviewClaims(
        sub=session_id, org=org_id, target=target, iat=iat, exp=iat + ttl_seconds
    )
    return jwt.encode(claims, secret), claims.exp


def verify_preview_token(secret: str, token: str, *, now: int | None = None) -> PreviewClaims:
    """The claims of a valid, unexpired preview token; :class:`TokenError` otherwise."""
    return jwt.decode(token, secret, PreviewClaims, now=now)


def mint_service_token(
    secret: str,
    service: str,
    ttl_seconds: int = SERVICE_TOKEN_TTL_SECONDS,
    *,
    now: int | None = None,
) -> str:
    """A service token naming ``service``, valid for ``ttl_seconds`` (default one hour)."""
    if not service:
        raise ValueError("service name must not be empty")
    iat = _now(now)
    return jwt.encode(ServiceClaims(sub=service, iat=iat, exp=iat + ttl_seconds), secret)


def verify_service_token(secret: str, token: str, *, now: int | None = None) -> ServiceClaims:
    """The claims of a valid, unexpired service token; :class:`TokenError` otherwise."""
    return jwt.decode(token, secret, ServiceClaims, now=now)


# --- sandbox tokens -------------------------------------------------------------------------


def sandbox_token(secret: str, session_id: str) -> str:
    """The token a sandbox of ``session_id`` presents to call back into Warren."""
    message = ("sandbox:" + session_id).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_sandbox_token(secret: str, session_id: str, token: str) -> bool:
    """True if ``token`` is the sandbox token of ``session_id`` (constant-time compare)."""
    expected = sandbox_token(secret, session_id)
    return hmac.compare_digest(expected.encode(), token.encode())


# --- API keys and browser-session tokens ----------------------------------------------------


@dataclass(frozen=True, repr=False)
class NewApiKey:
    """A freshly generated API key: ``key`` is shown once, ``key_hash`` is what is stored."""

    key: str
    prefix: str
    key_hash: bytes


def hash_api_key(key: str) -> bytes:
    """SHA-256 of an API key (keys are 256-bit random, so a fast hash is enough)."""
    return hashlib.sha256(key.encode()).digest()


def generate_api_key() -> NewApiKey:
    """A new random ``wk_...`` key with its visible prefix and storable hash."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(key=key, prefix=key[:API_KEY_VISIBLE_CHARS], key_hash=hash_api_key(key))


def looks_like_api_key(token: str) -> bool:
    """True if ``token`` has the API-key form (a cheap check before any lookup)."""
    return token.startswith(API_KEY_PREFIX) and 16 <= len(token) <= 128


def new_session_token() -> tuple[str, bytes]:
    """A random browser-session token and its SHA-256 (only the hash is stored)."""
    token = secrets.token_urlsafe(32)
    return token, hash_session_token(token)


def hash_session_token(token: str) -> bytes:
    """SHA-256 of a browser-session token."""
    return hashlib.sha256(token.encode()).digest()


# --- operator CLI ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m security.tokens service <name> [--ttl SECONDS]``: print a service token.

    Signs with ``WARREN_SECRET_KEY`` (validated like the server does).
    """
    from core.settings import SettingsError, load_settings

    parser = argparse.ArgumentParser(prog="python -m security.tokens")
    sub = parser.add_subparsers(dest="command", required=True)
    service = sub.add_parser("service", help="mint a service token")
    service.add_argument("name", help="the calling service's name (the token's sub)")
    service.add_argument("--ttl", type=int, default=SERVICE_TOKEN_TTL_SECONDS, help="seconds")
    args = parser.parse_args(argv)
    if args.ttl < 1:
        parser.error("--ttl must be at least 1 second")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(mint_service_token(settings.secret_key, args.name, args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
