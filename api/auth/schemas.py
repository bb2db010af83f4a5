from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TokenResponse(BaseModel):
    """RFC 6749 section 5.1."""

    access_token: str = Field(description="A JWT (EdDSA), valid for `expires_in` seconds.")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int
    refresh_token: str = Field(
        description="Opaque, single use: each refresh returns a new one. Presenting a used one ends the login."
    )


class JWK(BaseModel):
    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class JWKS(BaseModel):
    keys: list[JWK]
