from __future__ import annotations

import base64
import json
import stat
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from api.auth.keys import key_dir, load_key_ring, new_pem, thumbprint, write_new_key
from api.auth.tokens import InvalidToken, TokenCodec
from api.crypto import load_cipher, new_key_text
from api.models import Role
from api.models.base import utcnow
from api.settings import Settings
from tests.conftest import make_settings


def test_production_refuses_to_start_without_its_own_signing_keys(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="JOURNAL_SIGNING_KEYS"):
        Settings(environment="production", data_dir=tmp_path)


def test_production_refuses_to_start_without_its_own_encryption_keys(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="JOURNAL_ENCRYPTION_KEYS"):
        Settings(
            environment="production",
            data_dir=tmp_path,
            signing_keys=json.dumps([new_pem().decode()]),
        )


def test_production_starts_with_signing_keys_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        environment="production",
        data_dir=tmp_path,
        signing_keys=json.dumps([new_pem().decode()]),
        encryption_keys=json.dumps([new_key_text()]),
    )
    assert load_cipher(settings).current_kid
    ring = load_key_ring(settings)
    assert len(ring.jwks()["keys"]) == 1
    # Nothing was written to the data folder: production keys come from settings alone.
    assert not key_dir(settings).exists()


def test_database_url_defaults_to_sqlite_in_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'journal.db'}"


def test_database_url_is_read_from_the_plain_environment_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@h/db")
    assert Settings(data_dir=tmp_path).database_url == "postgresql+asyncpg://u@h/db"


def test_embedded_mode_makes_a_key_on_first_start_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, "sqlite+aiosqlite:///x.db")
    first = load_key_ring(settings)
    (key_file,) = key_dir(settings).glob("*.pem")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir(settings).stat().st_mode) == 0o700
    # The second start finds the same key rather than making another.
    assert load_key_ring(settings).signing.kid == first.signing.kid


def test_a_rotated_ring_signs_with_the_new_key_and_still_verifies_the_old(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite+aiosqlite:///x.db")
    old_codec = TokenCodec(load_key_ring(settings), settings)
    account, login = uuid.uuid4(), uuid.uuid4()
    old_token = old_codec.issue_access(account, Role.PATIENT, login, utcnow())

    new_key = write_new_key(key_dir(settings))
    rotated = load_key_ring(settings)
    codec = TokenCodec(rotated, settings)
    assert rotated.signing.kid == new_key.kid
    assert {k["kid"] for k in rotated.jwks()["keys"]} == {new_key.kid, old_codec._ring.signing.kid}
    assert jwt.get_unverified_header(codec.issue_access(account, Role.PATIENT, login, utcnow()))[
        "kid"
    ] == (new_key.kid)
    assert codec.verify_access(old_token).account_id == account

    # Retired: the old key's file removed, its tokens no longer verify.
    for path in key_dir(settings).glob("*.pem"):
        if path.stem.endswith(old_codec._ring.signing.kid):
            path.unlink()
    with pytest.raises(InvalidToken):
        TokenCodec(load_key_ring(settings), settings).verify_access(old_token)


def test_kid_is_the_rfc7638_thumbprint() -> None:
    # RFC 8037 appendix A.3: the thumbprint of its example Ed25519 public key.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    raw = base64.urlsafe_b64decode(x + "=")
    assert (
        thumbprint(Ed25519PublicKey.from_public_bytes(raw))
        == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    )


def test_access_token_lifetime_cannot_exceed_15_minutes(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, access_token_ttl_seconds=901)
