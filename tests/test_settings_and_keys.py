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


# --- every setting is checked as the process starts, with a message naming it ------------------

BAD_SETTINGS = [
    # (environment variable, value, what the message must name)
    ("JOURNAL_CRISIS_RESOURCES", '[{"phone": "988"}]', "JOURNAL_CRISIS_RESOURCES[0]: name"),
    ("JOURNAL_CRISIS_RESOURCES", '[{"name": " "}]', "JOURNAL_CRISIS_RESOURCES[0]"),
    ("JOURNAL_CRISIS_RESOURCES", '[{"name": "Lifeline"}]', "JOURNAL_CRISIS_RESOURCES[0]"),
    (
        "JOURNAL_CRISIS_RESOURCES",
        '[{"name": "Lifeline", "url": "javascript:alert(1)"}]',
        "JOURNAL_CRISIS_RESOURCES[0]: url",
    ),
    (
        "JOURNAL_CRISIS_RESOURCES",
        '[{"name": "Lifeline", "phone": "988", "fax": "1"}]',
        "JOURNAL_CRISIS_RESOURCES[0]: fax",
    ),
    ("JOURNAL_CRISIS_RESOURCES", '{"name": "Lifeline"}', "crisis_resources"),
    ("JOURNAL_RATE_LIMIT_PER_TOKEN", "lots", "JOURNAL_RATE_LIMIT_PER_TOKEN"),
    (
        "JOURNAL_RATE_LIMIT_TOKEN_PER_ACCOUNT",
        "ten a minute",
        "JOURNAL_RATE_LIMIT_TOKEN_PER_ACCOUNT",
    ),
    ("DATABASE_URL", "mysql://u@h/db", "DATABASE_URL"),
    ("DATABASE_URL", "not a url", "DATABASE_URL"),
    ("REDIS_URL", "http://cache:6379", "REDIS_URL"),
    ("JOURNAL_CORS_ORIGINS", '["https://app.example.org/"]', "JOURNAL_CORS_ORIGINS"),
    ("JOURNAL_SIGNING_KEYS", '["not a key"]', "JOURNAL_SIGNING_KEYS"),
    ("JOURNAL_SIGNING_KEYS", "[]", "JOURNAL_SIGNING_KEYS"),
    ("JOURNAL_ENCRYPTION_KEYS", '["c2hvcnQ"]', "JOURNAL_ENCRYPTION_KEYS"),
    ("JOURNAL_ENCRYPTION_KEYS", "not json", "JOURNAL_ENCRYPTION_KEYS"),
    ("JOURNAL_BODY_TIMEOUT_SECONDS", "0", "body_timeout_seconds"),
    ("JOURNAL_DB_POOL_SIZE", "0", "db_pool_size"),
    ("JOURNAL_LOG_LEVEL", "LOUD", "log_level"),
]


@pytest.mark.parametrize(("variable", "value", "named"), BAD_SETTINGS)
def test_a_bad_setting_stops_the_start_with_a_message_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path)
    assert named in str(refused.value)


def test_secrets_are_not_repeated_in_the_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = "-----BEGIN PRIVATE KEY-----\\nMC4CAQAwBQYDK2VwBCIEIsecretsecret\\n"
    monkeypatch.setenv("JOURNAL_SIGNING_KEYS", json.dumps([secret]))
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path)
    assert "secretsecret" not in str(refused.value)


def test_good_crisis_resources_are_kept_as_written(tmp_path: Path) -> None:
    resources = [
        {"name": "Samaritans (UK)", "phone": "116 123", "url": "https://www.samaritans.org"},
        {"name": "Crisis Text Line", "text": "HOME to 741741"},
    ]
    assert Settings(data_dir=tmp_path, crisis_resources=resources).crisis_resources == resources


def test_the_service_process_refuses_to_start_on_a_bad_setting(tmp_path: Path) -> None:
    """As an operator starts it: the process exits at once, naming the setting, instead of
    serving until the first PHQ-9 with item 9 above 0 turns into a 500."""
    import subprocess
    import sys

    from tests.support.cluster import ROOT, clean_environment

    env = {
        **clean_environment(),
        "JOURNAL_DATA_DIR": str(tmp_path),
        "JOURNAL_CRISIS_RESOURCES": '[{"phone": "988"}]',
    }
    started = subprocess.run(
        [sys.executable, "-c", "import api.main"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert "JOURNAL_CRISIS_RESOURCES[0]: name" in started.stderr
