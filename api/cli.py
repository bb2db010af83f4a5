"""Operator commands: ``journal --help``."""

from __future__ import annotations

import asyncio
import json
import sys

import typer

from api.auth.keys import (
    PENDING,
    key_dir,
    load_key_ring,
    new_pem,
    promote_pending,
    write_new_key,
)
from api.crypto import encryption_key_dir, load_cipher, new_key_text, write_new_encryption_key
from api.database import create_engine, create_sessionmaker
from api.journal.reencryption import Report, reencrypt
from api.settings import get_settings

app = typer.Typer(help="Operate the KAP integration journal.", no_args_is_help=True)
keys = typer.Typer(
    help="The embedded mode's signing keys in <data_dir>/keys.", no_args_is_help=True
)
app.add_typer(keys, name="keys")
encryption = typer.Typer(help="Keys that encrypt journal text at rest.", no_args_is_help=True)
app.add_typer(encryption, name="encryption")


@app.command()
def openapi() -> None:
    """Print the OpenAPI document the app serves, as committed in openapi/openapi.json."""
    from api.app import create_app

    sys.stdout.write(json.dumps(create_app().openapi(), indent=2, sort_keys=False) + "\n")


@keys.command("list")
def list_keys() -> None:
    """Show the key ring: the first kid signs, all of them verify (pending: not signing yet)."""
    settings = get_settings()
    ring = load_key_ring(settings)
    pending = {path.name for path in key_dir(settings).glob("*.pem" + PENDING)}
    for jwk in ring.jwks()["keys"]:
        marker = "signs" if jwk["kid"] == ring.signing.kid else "verifies"
        if any(jwk["kid"] in name for name in pending):
            marker = "verifies (pending: `journal keys promote` to sign)"
        typer.echo(f"{jwk['kid']}  {marker}")


@keys.command("rotate")
def rotate_keys() -> None:
    """Phase 1: add a new signing key that verifies but does not sign yet. Restart every node,
    then `journal keys promote`."""
    key = write_new_key(key_dir(get_settings()), pending=True)
    typer.echo(
        f"new signing key {key.kid}, accepted but not signing: restart every node, then run "
        "`journal keys promote` and restart them again"
    )


@keys.command("promote")
def promote_keys() -> None:
    """Phase 2: the pending key signs from each node's next start (run once every node accepts it)."""
    promoted = promote_pending(key_dir(get_settings()), "*.pem")
    if not promoted:
        raise typer.BadParameter("no pending key: `journal keys rotate` first")
    typer.echo(f"signing from the next start: {', '.join(promoted)}")


@keys.command("new-key")
def new_signing_key() -> None:
    """Print a fresh key as a JSON string, for JOURNAL_SIGNING_KEYS (append it, then move it first)."""
    typer.echo(json.dumps(new_pem().decode()))


@keys.command("retire")
def retire_key(kid: str) -> None:
    """Remove a key that no longer signs; tokens it signed stop verifying. Wait 15 minutes after rotating."""
    directory = key_dir(get_settings())
    ring = load_key_ring(get_settings())
    if kid == ring.signing.kid:
        raise typer.BadParameter("that key is signing: rotate first")
    matches = [path for path in directory.glob("*.pem") if path.stem.endswith(kid)]
    if not matches:
        raise typer.BadParameter("no such key in the ring")
    for path in matches:
        path.unlink()
    typer.echo(f"retired {kid}")


@encryption.command("rotate")
def rotate_encryption_key() -> None:
    """Phase 1: add a new encryption key in <data_dir>/keys/encryption that decrypts but does not
    encrypt yet. Restart every node, then `journal encryption promote`.

    In production, append a new key (`journal encryption new-key`) to JOURNAL_ENCRYPTION_KEYS,
    roll the nodes, then move it first and roll them again.
    """
    kid = write_new_encryption_key(encryption_key_dir(get_settings()), pending=True)
    typer.echo(
        f"new encryption key {kid}, decrypting but not encrypting: restart every node, then run "
        "`journal encryption promote` and restart them again"
    )


@encryption.command("promote")
def promote_encryption_key() -> None:
    """Phase 2: the pending key encrypts new writes from each node's next start."""
    promoted = promote_pending(encryption_key_dir(get_settings()), "*.key")
    if not promoted:
        raise typer.BadParameter("no pending key: `journal encryption rotate` first")
    typer.echo(f"encrypting from the next start: {', '.join(promoted)}")


@encryption.command("new-key")
def new_encryption_key() -> None:
    """Print a fresh key in the form JOURNAL_ENCRYPTION_KEYS takes."""
    typer.echo(new_key_text())


@encryption.command("reencrypt")
def reencrypt_all(batch_size: int = typer.Option(500, min=1, help="Rows per transaction.")) -> None:
    """Move every encrypted value to the newest key, in batches; safe to stop and run again."""
    report = asyncio.run(_reencrypt(batch_size))
    typer.echo(
        f"moved {report.moved} values to the newest key; {len(report.unreadable)} unreadable"
    )
    if report.unreadable:
        raise typer.Exit(code=1)


async def _reencrypt(batch_size: int) -> Report:
    settings = get_settings()
    engine = create_engine(settings)
    cipher = load_cipher(settings)
    try:
        return await reencrypt(create_sessionmaker(engine, cipher), cipher, batch_size)
    finally:
        await engine.dispose()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
