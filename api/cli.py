"""Operator commands: ``journal --help``."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

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
from api.therapists import service as therapist_service

T = TypeVar("T")

app = typer.Typer(help="Operate the KAP integration journal.", no_args_is_help=True)
keys = typer.Typer(
    help="The embedded mode's signing keys in <data_dir>/keys.", no_args_is_help=True
)
app.add_typer(keys, name="keys")
encryption = typer.Typer(help="Keys that encrypt journal text at rest.", no_args_is_help=True)
app.add_typer(encryption, name="encryption")
therapists = typer.Typer(
    help="Therapist accounts: by the operator's invitation only.", no_args_is_help=True
)
app.add_typer(therapists, name="therapists")


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


def _operate(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one operator command in a transaction of its own; its refusal exits with status 1."""

    async def run() -> T:
        async with therapist_service.operator_session(get_settings()) as session:
            return await work(session)

    try:
        return asyncio.run(run())
    except therapist_service.OperatorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None


@therapists.command("invite")
def invite_therapist(
    email: str,
    name: str = typer.Option(..., "--name", help="The name patients will see."),
    clinic: str | None = typer.Option(None, "--clinic", help="The clinic patients will see."),
) -> None:
    """Invite a therapist: prints a one-time code (7 days, this email only) on the last line.

    With JOURNAL_SMTP_URL set, the code is also mailed to EMAIL.
    """
    invited = _operate(lambda session: therapist_service.invite(session, email, name, clinic))
    invitation = invited.invitation
    typer.echo(
        f"invited {invitation.email} as {invitation.display_name}"
        + (f" ({invitation.clinic})" if invitation.clinic else "")
        + f"; valid until {invitation.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    settings = get_settings()
    if settings.smtp_url is not None:
        from api.therapists.mail import send_invitation

        try:
            asyncio.run(send_invitation(settings, invited))
            typer.echo(f"mailed to {invitation.email}")
        except Exception as exc:
            # The invitation stands: hand the code on another way, or invite again.
            typer.echo(f"could not mail it ({type(exc).__name__}): give the code below in person")
    typer.echo(invited.code)


@therapists.command("list")
def list_therapists() -> None:
    """Every therapist and pending invitation: email, state, name, clinic, stray requests."""
    lines = _operate(therapist_service.listing)
    for line in lines:
        typer.echo(
            f"{line.email}\t{line.state}\t{_cell(line.name)}\t{_cell(line.clinic or '-')}\t"
            f"{line.stray_requests} stray requests"
        )


def _cell(text: str) -> str:
    """A name as one cell of a line: a tab, a line break or any other unprintable character a
    therapist put in their name is shown escaped, so it cannot break or forge the listing."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


@therapists.command("revoke-invitation")
def revoke_invitation(email: str) -> None:
    """Revoke the invitation pending for EMAIL: its code stops working."""
    count = _operate(lambda session: therapist_service.revoke_invitation(session, email))
    typer.echo("invitation revoked" if count else "no pending invitation for this email")


@therapists.command("verify")
def verify_therapist(email: str) -> None:
    """Verify an existing therapist account: they can receive grants and make pairing codes."""
    account = _operate(lambda session: therapist_service.verify(session, email))
    typer.echo(f"verified {account.email}")


@therapists.command("deactivate")
def deactivate_therapist(email: str) -> None:
    """End every login, web session, read token and grant of a therapist at once; no sign-in after."""
    account = _operate(lambda session: therapist_service.deactivate(session, email))
    typer.echo(f"deactivated {account.email}: every login and grant ended")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
