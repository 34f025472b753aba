"""Sealing small secrets at rest: AES-256-GCM with a key derived from ``settings.secret_key``.

A sealed value is ``v1.<base64url(nonce ‖ ciphertext ‖ tag)>``. The key is
HKDF-SHA256(secret_key, info=``warren:seal:v1:<purpose>``), so a value sealed for one
purpose (``slack-token``, ``webhook-secret``, ``poll-token``) cannot be opened as another;
the purpose is also the associated data. Values are never logged; errors say only that
opening failed.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1."
_NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value is malformed or was sealed with another key or purpose."""


@lru_cache(maxsize=64)
def _aead(secret_key: str, purpose: str) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=f"warren:seal:v1:{purpose}".encode(),
    ).derive(secret_key.encode())
    return AESGCM(key)


def seal(secret_key: str, purpose: str, plaintext: str) -> str:
    """Encrypt ``plaintext`` for ``purpose``; a fresh random nonce every call."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _aead(secret_key, purpose).encrypt(nonce, plaintext.encode(), purpose.encode())
    return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(secret_key: str, purpose: str, sealed: str) -> str:
    """The plaintext of a value :func:`seal` produced; :class:`SealError` otherwise."""
    if not sealed.startswith(_VERSION):
        raise SealError("sealed value has an unknown format")
    try:
        raw = base64.urlsafe_b64decode(sealed[len(_VERSION) :].encode())
    except ValueError:
        raise SealError("sealed value is not base64") from None
    if len(raw) < _NONCE_BYTES + 16:
        raise SealError("sealed value is truncated")
    nonce, body = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
    try:
        plain = _aead(secret_key, purpose).decrypt(nonce, body, purpose.encode())
    except InvalidTag:
        raise SealError("sealed value does not open with this key and purpose") from None
    return plain.decode()
