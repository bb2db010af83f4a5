from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class TokenResponse(BaseModel):
    """RFC 6749 section 5.1."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6ImlpU2Z2M2tJZjQwVmU5dmR2ckNZNkUtYWZDVDVVNVp3OEtLTmRDS0tVWUUiLCJ0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiI2YjhhZDk3Mi05MzI5LTRhMWQtYjI2NS00Mjg4YWJhYmNjYTAifQ.f21uQ1XdxkGuicvqbcoUq6fjcUgReXVKHs5FnaRbjpKJrOcd0QM2k9a8sarHxGVCC4nODd-GsuTawl_euzFTBg",
                    "token_type": "Bearer",
                    "expires_in": 900,
                    "refresh_token": "rt_4356LhI65Eq5xtwFdA4PmgpJWFBXZVie2cRYPw7_2bU",
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "keys": [
                        {
                            "kty": "OKP",
                            "crv": "Ed25519",
                            "x": "WcIpnfqC8VaQSLUBaicoy9_inVcqlCcF57HcNrm_OpI",
                            "kid": "iiSfv3kIf40Ve9vdvrCY6E-afCT5U5Zw8KKNdCKKUYE",
                            "alg": "EdDSA",
                            "use": "sig",
                        }
                    ]
                }
            ]
        }
    )

    keys: list[JWK]


# The token request as integrators see it in the spec: one form per grant (api.openapi puts them
# in place of the form FastAPI derives from the endpoint's fields). The endpoint reads the fields
# itself, so that every refusal is an RFC 6749 error; these say what it accepts.
MAX_FIELD = 4096  # no credential of ours is longer; longer input is refused unread
Ignored = Annotated[
    str,
    Field(max_length=MAX_FIELD, description="Ignored: a login token carries its account's role."),
]


class PasswordGrant(BaseModel):
    """Sign in (RFC 6749, 4.3.2)."""

    grant_type: Literal["password"]
    username: str = Field(min_length=1, max_length=MAX_FIELD, description="The account's email.")
    password: str = Field(min_length=1, max_length=MAX_FIELD)
    scope: Ignored | None = None


class RefreshTokenGrant(BaseModel):
    """Exchange the last refresh token for a new pair (RFC 6749, 6)."""

    grant_type: Literal["refresh_token"]
    refresh_token: str = Field(
        min_length=1, max_length=MAX_FIELD, description="The last refresh token."
    )
    scope: Ignored | None = None
