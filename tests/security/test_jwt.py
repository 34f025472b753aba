"""The HS256 JWT core: signatures, algorithms, expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from schemas.auth import ServiceClaims, WsClaims
from security import jwt

SECRET = "s" * 40


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, str], claims: dict[str, object], key: bytes) -> str:
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(sig)


def test_round_trip() -> None:
    claims = WsClaims(sub="u", org="o", iat=1000, exp=1100)
    token = jwt.encode(claims, SECRET)
    assert jwt.decode(token, SECRET, WsClaims, now=1050) == claims


def test_token_is_a_standard_hs256_jwt() -> None:
    token = jwt.encode(ServiceClaims(sub="svc", iat=1000, exp=2000), SECRET)
    header_b64, payload_b64, sig_b64 = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    assert header == {"alg": "HS256", "typ": "JWT"}
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    assert payload == {"sub": "svc", "iat": 1000, "exp": 2000, "typ": "service"}
    expected = hmac.new(
        jwt.signing_key(SECRET), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256
    ).digest()
    assert sig_b64 == _b64(expected)


def test_wrong_secret_is_rejected() -> None:
    token = jwt.encode(WsClaims(sub="u", org="o", iat=1000, exp=1100), SECRET)
    with pytest.raises(jwt.TokenError, match="signature"):
        jwt.decode(token, "t" * 40, WsClaims, now=1050)


def test_tampered_payload_is_rejected() -> None:
    token = jwt.encode(WsClaims(sub="u", org="o", iat=1000, exp=1100), SECRET)
    header, _, sig = token.split(".")
    other = _b64(json.dumps({"sub": "admin", "org": "o", "iat": 1000, "exp": 1100}).encode())
    with pytest.raises(jwt.TokenError):
        jwt.decode(f"{header}.{other}.{sig}", SECRET, WsClaims, now=1050)


def test_alg_none_is_rejected() -> None:
    claims = {"sub": "u", "org": "o", "iat": 1000, "exp": 1100, "typ": "ws"}
    token = _b64(b'{"alg":"none"}') + "." + _b64(json.dumps(claims).encode()) + "."
    with pytest.raises(jwt.TokenError, match="algorithm"):
        jwt.decode(token, SECRET, WsClaims, now=1050)


def test_raw_secret_signature_is_rejected() -> None:
    # Signed with the deployment secret itself rather than the derived JWT key.
    claims = {"sub": "u", "org": "o", "iat": 1000, "exp": 1100, "typ": "ws"}
    token = _forge({"alg": "HS256"}, claims, SECRET.encode())
    with pytest.raises(jwt.TokenError, match="signature"):
        jwt.decode(token, SECRET, WsClaims, now=1050)


def test_expiry_is_enforced() -> None:
    token = jwt.encode(WsClaims(sub="u", org="o", iat=1000, exp=1100), SECRET)
    assert jwt.decode(token, SECRET, WsClaims, now=1099).sub == "u"
    with pytest.raises(jwt.TokenError, match="expired"):
        jwt.decode(token, SECRET, WsClaims, now=1100)


def test_future_iat_is_rejected() -> None:
    token = jwt.encode(WsClaims(sub="u", org="o", iat=5000, exp=6000), SECRET)
    with pytest.raises(jwt.TokenError, match="future"):
        jwt.decode(token, SECRET, WsClaims, now=1000)


def test_claims_type_pins_the_token_type() -> None:
    token = jwt.encode(ServiceClaims(sub="svc", iat=1000, exp=2000), SECRET)
    with pytest.raises(jwt.TokenError, match="type"):
        jwt.decode(token, SECRET, WsClaims, now=1500)


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "a.b.c.d", "!!.??.**", "x" * 5000, "e30.e30.AAAA"]
)
def test_garbage_is_a_token_error(token: str) -> None:
    with pytest.raises(jwt.TokenError):
        jwt.decode(token, SECRET, WsClaims, now=1000)
