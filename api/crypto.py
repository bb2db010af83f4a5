"""Encryption at rest for free text: AES-256-GCM, a fresh 96-bit nonce per value, the key id in
the stored value, and associated data binding each value to its table, column, row and owner, so
a value copied to another row, column or patient does not decrypt.

Stored form: ``v1.<kid>.<base64url(nonce || ciphertext+tag)>``. The first key in the ring (the
newest in use) encrypts; every key in the ring decrypts, until ``journal encryption reencrypt`` has
moved every row to the newest and the old one is removed. A new key is added in two phases, as
signing keys are (api.auth.keys): accepted everywhere first, used after.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from api.auth.keys import PENDING, ring_files
from api.settings import Settings

VERSION = "v1"
NONCE_BYTES = 12


class UnreadableValue(Exception):
    """A stored value failed to decrypt: tampered with, moved, or its key is gone."""


# What a reader sees in place of a value that fails to decrypt: no 500, no garbage, and an
# error in the operator's log naming the row (see api.journal.repository).
UNREADABLE_TEXT = "[This text could not be decrypted. The service operator has been alerted.]"


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"journal-field-key" + key).hexdigest()[:12]


def associated_data(table: str, column: str, row_id: uuid.UUID | str, owner_id: uuid.UUID) -> bytes:
    return f"{table}|{column}|{row_id}|{owner_id}".encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class FieldCipher:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys or any(len(key) != 32 for key in keys):
            raise ValueError("encryption keys are 32 random bytes each, at least one")
        self.current_kid = key_id(keys[0])
        self._newest = keys[0]
        self._current = AESGCM(keys[0])
        self._by_kid = {key_id(key): AESGCM(key) for key in keys}

    def derive(self, purpose: bytes) -> bytes:
        """A secret of its own for ``purpose`` (HMAC-SHA256 of it under the newest key), so
        that one configured secret serves each use without any use revealing another's."""
        return hmac.new(self._newest, purpose, hashlib.sha256).digest()

    def encrypt(self, plaintext: str, aad: bytes) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._current.encrypt(nonce, plaintext.encode("utf-8", "surrogatepass"), aad)
        return f"{VERSION}.{self.current_kid}.{_b64(nonce + sealed)}"

    def decrypt(self, stored: str, aad: bytes) -> str:
        try:
            version, kid, payload = stored.split(".")
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        except (ValueError, binascii.Error) as exc:
            raise UnreadableValue("not an encrypted value") from exc
        cipher = self._by_kid.get(kid)
        if version != VERSION or cipher is None:
            raise UnreadableValue(f"unknown key {kid!r}")
        try:
            plain = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise UnreadableValue("authentication failed") from exc
        return plain.decode("utf-8", "surrogatepass")


def encryption_key_dir(settings: Settings) -> Path:
    return settings.data_dir / "keys" / "encryption"


def write_new_encryption_key(directory: Path, *, pending: bool = False) -> str:
    """A new key file, owner-only, named so that names sort by age; returns its key id. A
    ``pending`` key decrypts but does not encrypt until promoted (two-phase rotation, as for
    signing keys: api.auth.keys)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"{stamp}-{key_id(key)}.key{PENDING if pending else ''}"
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_b64(key))
    partial.rename(path)
    return key_id(key)


def _decode_key(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))


def load_cipher(settings: Settings) -> FieldCipher:
    if settings.encryption_keys is not None:
        encoded = json.loads(settings.encryption_keys.get_secret_value())
        if not isinstance(encoded, list) or not all(isinstance(k, str) for k in encoded):
            raise ValueError(
                "JOURNAL_ENCRYPTION_KEYS must be a JSON array of base64 keys, newest first"
            )
        return FieldCipher([_decode_key(k) for k in encoded])
    directory = encryption_key_dir(settings)
    if not ring_files(directory, "*.key"):
        write_new_encryption_key(directory)
    return FieldCipher([_decode_key(path.read_text()) for path in ring_files(directory, "*.key")])


def new_key_text() -> str:
    """A fresh key, encoded as JOURNAL_ENCRYPTION_KEYS takes it."""
    return _b64(secrets.token_bytes(32))
