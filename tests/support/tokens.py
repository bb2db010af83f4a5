"""Forging tokens the way an attacker (or a buggy client) would, with the app's own key when needed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from api.auth.keys import SigningKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signing_key(app: FastAPI) -> SigningKey:
    key: SigningKey = app.state.tokens._ring.signing
    return key


def valid_claims(
    app: FastAPI, account_id: str, login_id: str, role: str = "patient"
) -> dict[str, Any]:
    settings = app.state.settings
    now = int(time.time())
    return {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": account_id,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "role": role,
        "sid": login_id,
    }


def sign(
    app: FastAPI,
    claims: dict[str, Any],
    *,
    headers: dict[str, Any] | None = None,
    key: Ed25519PrivateKey | None = None,
) -> str:
    """Sign by hand, so that headers a library would refuse to write can be sent."""
    own = signing_key(app)
    header = {"alg": "EdDSA", "kid": own.kid, "typ": "at+jwt", **(headers or {})}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = (key or own.private_key).sign(signing_input.encode())
    return f"{signing_input}.{b64(signature)}"


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    return f"{head}.{body}.{b64(signature)}"


def hs256_with_public_key(app: FastAPI, claims: dict[str, Any]) -> str:
    """The classic confusion attack: HMAC keyed with the server's public key."""
    own = signing_key(app)
    public_pem = own.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": own.kid}
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    mac = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def flip_signature_bit(token: str) -> str:
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0x01
    return f"{head}.{body}.{b64(bytes(raw))}"
