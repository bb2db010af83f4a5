"""The signing key ring: the newest key signs, every key in the ring verifies and is published.

Keys are Ed25519 (JWS ``EdDSA``). A key's ``kid`` is its RFC 7638 JWK thumbprint, so the same key
has the same id on every process and no registry of names is needed.

Rotation is in two phases, so that nodes restarted at different times always accept each
other's tokens: a new key is first *accepted* by every node (it verifies and is published), and
only once every node has it is it *used* (it signs); the old key keeps verifying until every
token it signed has expired (15 minutes), then it is removed. In the embedded mode the ring lives
in ``<data_dir>/keys/`` (mode 0600): ``*.pem`` in use (the newest signs), ``*.pem.next`` accepted
only; ``journal keys rotate`` (phase 1), ``journal keys promote`` (phase 2) and ``journal keys
retire`` manage it. In production it is ``JOURNAL_SIGNING_KEYS``, a JSON array of PEMs: the first
signs, all verify; phase 1 appends the new key, phase 2 moves it first.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from api.settings import Settings

ALGORITHM = "EdDSA"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _public_x(self.public_key),
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }


def _public_x(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _b64url(raw)


def thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, no white space."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": _public_x(public_key)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


def load_pem(pem: str | bytes) -> SigningKey:
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("signing keys must be Ed25519")
    return SigningKey(kid=thumbprint(key.public_key()), private_key=key)


def new_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class KeyRing:
    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self.signing = keys[0]
        self._by_kid = {key.kid: key for key in keys}
        # Derived once: every request verifies with these.
        self._public = {key.kid: key.public_key for key in keys}

    def verifying_key(self, kid: str) -> Ed25519PublicKey | None:
        return self._public.get(kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self._by_kid.values()]}


def key_dir(settings: Settings) -> Path:
    return settings.data_dir / "keys"


PENDING = ".next"  # suffix of a key accepted (it verifies) but not yet used (it does not sign)


def write_new_key(directory: Path, *, pending: bool = False) -> SigningKey:
    """Create a key file readable by its owner only; file names sort by age, newest last.
    A ``pending`` key verifies but does not sign until promoted (``promote_pending``)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = new_pem()
    key = load_pem(pem)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"{stamp}-{key.kid}.pem{PENDING if pending else ''}"
    # Written aside and renamed, so a process starting beside this one never reads half a key.
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    partial.rename(path)
    return key


def promote_pending(directory: Path, pattern: str) -> list[str]:
    """Phase 2: every pending key matching ``pattern`` (``*.pem``) is used from the next start;
    returns the promoted file names. Renamed in place: the name keeps its age, so the newest
    key in use is the one just promoted."""
    promoted = []
    for path in sorted(directory.glob(pattern + PENDING)):
        path.rename(path.with_name(path.name.removesuffix(PENDING)))
        promoted.append(path.name.removesuffix(PENDING))
    return promoted


def ring_files(directory: Path, pattern: str) -> list[Path]:
    """The key files in the order of a ring: in use, newest first, then the pending ones."""
    if not directory.exists():
        return []
    used = sorted(directory.glob(pattern), reverse=True)
    return [*used, *sorted(directory.glob(pattern + PENDING), reverse=True)]


def load_key_ring(settings: Settings) -> KeyRing:
    if settings.signing_keys is not None:
        pems = json.loads(settings.signing_keys.get_secret_value())
        if not isinstance(pems, list) or not all(isinstance(p, str) for p in pems):
            raise ValueError("JOURNAL_SIGNING_KEYS must be a JSON array of PEM strings")
        return KeyRing([load_pem(p) for p in pems])
    directory = key_dir(settings)
    if not ring_files(directory, "*.pem"):
        write_new_key(directory)
    return KeyRing([load_pem(path.read_bytes()) for path in ring_files(directory, "*.pem")])
