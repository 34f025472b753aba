"""Compact HS256 JSON Web Tokens, built on ``hmac`` and ``base64`` only.

Only ``alg: HS256`` is ever accepted (no ``none``, no algorithm confusion). The signing key
is derived from the deployment secret so that JWT signatures cannot be replayed as any other
HMAC Warren computes with the same secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, TypeVar

import msgspec

from schemas.auth import JwtHeader

T = TypeVar("T")

_HEADER = msgspec.json.encode(JwtHeader(alg="HS256"))
_MAX_TOKEN_CHARS = 4096
# Tolerated clock difference between the minting and the verifying process.
CLOCK_SKEW_SECONDS = 30


class TokenError(ValueError):
    """A token is malformed, badly signed, of the wrong type or expired."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise TokenError("malformed token") from None


def signing_key(secret: str) -> bytes:
    """The HS256 key for ``secret`` (domain-separated from other uses of the secret)."""
    return hmac.new(secret.encode(), b"warren:jwt:v1", hashlib.sha256).digest()


def encode(claims: Any, secret: str) -> str:
    """Sign ``claims`` (a msgspec Struct or dict) as a compact HS256 JWT."""
    signing_input = _b64encode(_HEADER) + "." + _b64encode(msgspec.json.encode(claims))
    signature = hmac.new(signing_key(secret), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64encode(signature)


def decode(token: str, secret: str, claims_type: type[T], *, now: int | None = None) -> T:
    """Verify ``token`` and return its claims as ``claims_type``.

    Checks, in order: shape, header (HS256 only), signature (constant time), the claims'
    shape (``claims_type`` pins ``typ``), ``exp`` in the future and ``iat`` not in the future.
    Raises :class:`TokenError` on any failure.
    """
    if len(token) > _MAX_TOKEN_CHARS or token.count(".") != 2:
        raise TokenError("malformed token")
    header_b64, payload_b64, signature_b64 = token.split(".")
    try:
        header = msgspec.json.decode(_b64decode(header_b64), type=JwtHeader)
    except msgspec.DecodeError:
        raise TokenError("malformed token") from None
    if header.alg != "HS256":
        raise TokenError("unsupported token algorithm")
    signing_input = f"{header_b64}.{payload_b64}".encode()
    expected = hmac.new(signing_key(secret), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64decode(signature_b64)):
        raise TokenError("bad token signature")
    try:
        claims = msgspec.json.decode(_b64decode(payload_b64), type=claims_type)
    except msgspec.DecodeError:
        raise TokenError("wrong token type") from None
    current = int(time.time()) if now is None else now
    exp: int = getattr(claims, "exp", 0)
    iat: int = getattr(claims, "iat", 0)
    if current >= exp:
        raise TokenError("token expired")
    if iat > current + CLOCK_SKEW_SECONDS:
        raise TokenError("token issued in the future")
    return claims
