"""`journal therapists ...` as the operator runs it: a real process, and for the invitation mail a
real SMTP server (aiosmtpd) on loopback that the test reads.

The module has a database of its own (SQLite file or PostgreSQL database, migrated), with an app
on it: the CLI processes never open the suite's shared SQLite file, which the suite's app holds
open in WAL mode for the whole run.
"""

from __future__ import annotations

import asyncio
import email
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from email.message import Message
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from api.app import create_app
from api.settings import Settings
from tests.conftest import SERVER_URL, make_settings
from tests.support.databases import fresh_database, migrate
from tests.support.journal import assert_problem
from tests.support.people import PASSWORD, invitations_on, register, token, unique_email
from tests.support.server import service_environment
from tests.support.sharing import give_grant, mint


async def journal(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    """Run the CLI; its exit status and the lines it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode().splitlines()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with fresh_database(SERVER_URL, tmp_path_factory.mktemp("cli-db")) as url:
        migrate(url)
        yield make_settings(tmp_path_factory.mktemp("cli-data"), url)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    with invitations_on(settings.database_url):
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield http


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return service_environment(settings.database_url, settings.data_dir)


class Inbox:
    """What the SMTP server received, whole."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append((envelope, email.message_from_bytes(content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with socket.socket() as probe:  # a port free on loopback now
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_the_operator_invites_lists_verifies_and_deactivates(
    client: httpx.AsyncClient, env: dict[str, str]
) -> None:
    address = unique_email("dr")
    status, lines = await journal(
        env, "therapists", "invite", address, "--name", "Dr. Mina Ortiz", "--clinic", "Bay KAP"
    )
    assert status == 0, lines
    code = lines[-1]  # the code, on the last line
    assert code.startswith("inv_")
    assert "mailed" not in "\n".join(lines)  # no SMTP configured: the output is the channel

    body = {"email": address, "password": PASSWORD, "role": "therapist", "invitation_code": code}
    created = await client.post("/v1/accounts", json=body)
    assert created.status_code == 201, created.text
    status, lines = await journal(env, "therapists", "list")
    assert status == 0, lines[-20:]
    mine = [line for line in lines if line.startswith(f"{address}\t")]
    assert mine == [f"{address}\tverified\tDr. Mina Ortiz\tBay KAP\t0 stray requests"]

    # Deactivation ends what the therapist holds, at once.
    patient = await register(client)
    tokens = await token(client, address)
    therapist_headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    grant = await client.post(
        "/v1/grants",
        json={"therapist_email": address, "scopes": ["checkins:read"]},
        headers=patient.headers,
    )
    assert grant.status_code == 201
    status, lines = await journal(env, "therapists", "deactivate", address)
    assert status == 0, lines
    assert_problem(await client.get("/v1/patients", headers=therapist_headers), 401)
    # A deactivated therapist cannot be verified back by mistake.
    status, lines = await journal(env, "therapists", "verify", address)
    assert status == 1
    assert "deactivated" in lines[-1]


async def test_revoking_an_invitation_and_refusals(
    client: httpx.AsyncClient, env: dict[str, str]
) -> None:
    address = unique_email("dr")
    _, lines = await journal(env, "therapists", "invite", address, "--name", "Dr. X")
    code = lines[-1]
    status, lines = await journal(env, "therapists", "revoke-invitation", address)
    assert (status, lines[-1]) == (0, "invitation revoked")
    body = {"email": address, "password": PASSWORD, "role": "therapist", "invitation_code": code}
    assert_problem(await client.post("/v1/accounts", json=body), 403)

    patient = await register(client)
    for args in (
        ("invite", patient.email, "--name", "Someone"),  # an account exists
        ("verify", patient.email),  # not a therapist
    ):
        status, lines = await journal(env, "therapists", *args)
        assert status == 1, lines
        assert lines[-1].startswith("error: ")


async def test_an_unverified_therapist_is_verified_by_the_operator(
    client: httpx.AsyncClient, env: dict[str, str], settings: Settings
) -> None:
    from sqlalchemy import update

    from api.models import Account
    from api.therapists.service import operator_session

    therapist = await register(client, "therapist")
    async with operator_session(settings) as session:
        await session.execute(
            update(Account).where(Account.email == therapist.email).values(verified=False)
        )
    patient = await register(client)
    status, lines = await journal(env, "therapists", "verify", therapist.email)
    assert (status, lines[-1]) == (0, f"verified {therapist.email}")
    grant = await give_grant(client, patient, therapist)
    assert await mint(client, therapist, grant["id"])


async def test_the_invitation_is_mailed_through_smtp(
    client: httpx.AsyncClient,
    env: dict[str, str],
    smtp_server: tuple[Inbox, int],
    tmp_path: Path,
) -> None:
    inbox, port = smtp_server
    address = unique_email("dr")
    mailing = {
        **env,
        "JOURNAL_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "JOURNAL_SMTP_FROM": "Journal <operator@example.org>",
    }
    status, lines = await journal(
        mailing, "therapists", "invite", address, "--name", "Dr. Mail", "--clinic", "Post Clinic"
    )
    assert status == 0, lines
    assert f"mailed to {address}" in lines
    code = lines[-1]
    assert len(inbox.messages) == 1
    envelope, message = inbox.messages[0]
    assert envelope.rcpt_tos == [address]
    assert message["To"] == address
    assert message["From"] == "Journal <operator@example.org>"
    text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert code in text
    assert "Dr. Mail (Post Clinic)" in text
    # The code from the mail signs the therapist up.
    body = {"email": address, "password": PASSWORD, "role": "therapist", "invitation_code": code}
    assert (await client.post("/v1/accounts", json=body)).status_code == 201


async def test_a_mail_server_that_is_away_leaves_the_code_in_the_output(
    client: httpx.AsyncClient, env: dict[str, str]
) -> None:
    # Port 9 on loopback (discard): nothing listens there, so the connection is refused.
    away = {**env, "JOURNAL_SMTP_URL": "smtp://127.0.0.1:9", "JOURNAL_SMTP_TIMEOUT_SECONDS": "5"}
    address = unique_email("dr")
    status, lines = await journal(away, "therapists", "invite", address, "--name", "Dr. Away")
    assert status == 0, lines
    assert any(line.startswith("could not mail it") for line in lines)
    code = lines[-1]
    body = {"email": address, "password": PASSWORD, "role": "therapist", "invitation_code": code}
    assert (await client.post("/v1/accounts", json=body)).status_code == 201
