"""An integrator's first hour: a Python client generated from the committed spec drives the app.

openapi-python-client writes a typed client for openapi/openapi.json into a temporary folder; the
test imports it and runs a patient's day and a therapist's read through it, against the app in
process (httpx's ASGI transport). Every answer is parsed into the generated models, so a response
that does not fit its documented schema fails here, and so does an undocumented status code
(``raise_on_unexpected_status``). Nothing generated is kept in the repository.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.people import PASSWORD, invite, unique_email

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "openapi" / "openapi.json"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "kap_journal_client"
BASE_URL = "http://testserver"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The generated client package, imported."""
    assert GENERATOR.exists(), (
        f"{GENERATOR} is missing: openapi-python-client belongs to the dev dependency group"
    )
    out = tmp_path_factory.mktemp("generated")
    config = out / "generator.yaml"
    config.write_text("post_hooks: []\n")  # no ruff over the generated code: it is thrown away
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(SPEC_PATH),
            "--output-path",
            str(out / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
            # A construct of the spec the generator cannot express is a failure, not a gap.
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"generation failed:\n{result.stdout}\n{result.stderr}"
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


class Kit:
    """The generated package, by the names an integrator would type."""

    def __init__(self, package: Any, app: FastAPI) -> None:
        self.package = package
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.transport = httpx.ASGITransport(app=app)
        self.opened: list[Any] = []

    def op(self, module: str) -> Any:
        """An operation module, e.g. ``op("sessions.create_session").asyncio(...)``."""
        return importlib.import_module(f"{PACKAGE}.api.{module}")

    def anonymous(self) -> Any:
        return self._open(self.package.Client(**self._options()))

    def bearer(self, token: str) -> Any:
        return self._open(self.package.AuthenticatedClient(token=token, **self._options()))

    def _options(self) -> dict[str, Any]:
        # The generated client builds its own httpx.AsyncClient (with the Authorization header);
        # httpx_args hands it the transport into the app.
        return {
            "base_url": BASE_URL,
            "raise_on_unexpected_status": True,
            "httpx_args": {"transport": self.transport},
        }

    def _open(self, client: Any) -> Any:
        self.opened.append(client)
        return client

    async def close(self) -> None:
        for client in self.opened:
            await client.get_async_httpx_client().aclose()


@pytest.fixture
async def kit(generated: Any, app: FastAPI) -> AsyncIterator[Kit]:
    kit = Kit(generated, app)
    try:
        yield kit
    finally:
        await kit.close()


async def sign_up(kit: Kit, role: str, name: str) -> tuple[Any, Any]:
    """A new account through the generated client: its AccountRead and an authenticated client."""
    m, anonymous = kit.models, kit.anonymous()
    email = unique_email(role)
    code = await invite(email, name) if role == "therapist" else None
    account = await kit.op("accounts.create_account").asyncio(
        client=anonymous,
        body=m.AccountCreate(
            email=email,
            password=PASSWORD,
            display_name=name,
            role=m.Role(role),
            **({"invitation_code": code} if code else {}),
        ),
    )
    assert isinstance(account, m.AccountRead), account
    assert (account.email, account.role, account.display_name) == (email, m.Role(role), name)
    tokens = await kit.op("auth.issue_token").asyncio(
        client=anonymous,
        body=m.PasswordGrant(grant_type="password", username=email, password=PASSWORD),
    )
    assert isinstance(tokens, m.TokenResponse), tokens
    assert tokens.token_type == "Bearer"
    assert 0 < tokens.expires_in <= 900
    assert tokens.refresh_token.startswith("rt_")
    return account, kit.bearer(tokens.access_token)


async def test_a_patients_day_and_a_therapists_read_through_the_generated_client(
    kit: Kit,
) -> None:
    m, op = kit.models, kit.op
    account, patient = await sign_up(kit, "patient", "Ada")
    me = await op("accounts.get_me").asyncio(client=patient)
    assert isinstance(me, m.AccountRead)
    assert me.id == account.id

    # A patient's day: a dosing session, an intention, a check-in, a PHQ-9, a reflection.
    started = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    session = await op("sessions.create_session").asyncio(
        client=patient,
        body=m.DosingSessionCreate(
            started_at=started, route=m.Route.SUBLINGUAL, dose_mg=100.0, setting=m.Setting.HOME
        ),
        idempotency_key="generated-client-day-1",
    )
    assert isinstance(session, m.DosingSessionRead), session
    assert (session.started_at, session.route, session.dose_mg) == (
        started,
        m.Route.SUBLINGUAL,
        100.0,
    )
    assert session.version == 1

    intention = await op("intentions.create_intention").asyncio(
        client=patient,
        body=m.IntentionCreate(text="Be gentler with myself", session_id=session.id),
    )
    assert isinstance(intention, m.IntentionRead), intention
    assert (intention.session_id, intention.status) == (session.id, m.IntentionStatus.ACTIVE)

    checkin = await op("checkins.create_checkin").asyncio(
        client=patient,
        body=m.CheckinCreate(mood=6, anxiety=3, sleep_hours=7.5, note="slept well"),
    )
    assert isinstance(checkin, m.CheckinRead), checkin
    assert (checkin.mood, checkin.anxiety, checkin.sleep_hours, checkin.note) == (
        6,
        3,
        7.5,
        "slept well",
    )
    assert checkin.backfilled is False

    phq9 = await op("assessments.create_assessment").asyncio(
        client=patient,
        body=m.AssessmentCreate(instrument=m.Instrument.PHQ9, answers=[1, 1, 2, 1, 0, 1, 1, 0, 0]),
    )
    assert isinstance(phq9, m.AssessmentRead), phq9
    assert (phq9.total, phq9.band, phq9.safety_flag) == (7, "mild", False)
    assert phq9.crisis_resources == []

    reflection = await op("reflections.create_reflection").asyncio(
        client=patient,
        body=m.ReflectionCreate(
            text="A wide open feeling",
            session_id=session.id,
            intention_ids=[intention.id],
            emotions=["calm"],
            prompts=[m.PromptAnswer(prompt="What surprised you?", answer="How calm it was")],
        ),
    )
    assert isinstance(reflection, m.ReflectionRead), reflection
    assert reflection.intention_ids == [intention.id]
    assert [(p.prompt, p.answer) for p in reflection.prompts] == [
        ("What surprised you?", "How calm it was")
    ]

    # Sync from the start: everything just written, each in its group.
    changes = await op("sync.pull_changes").asyncio(client=patient, cursor="0")
    assert isinstance(changes, m.SyncPage), changes
    assert changes.has_more is False
    assert int(changes.next_cursor) >= 5
    assert [e.id for e in changes.changes.sessions] == [session.id]
    assert [e.id for e in changes.changes.intentions] == [intention.id]
    assert [e.id for e in changes.changes.checkins] == [checkin.id]
    assert [e.id for e in changes.changes.assessments] == [phq9.id]
    assert [e.id for e in changes.changes.reflections] == [reflection.id]

    summary = await op("summary.get_my_summary").asyncio(
        client=patient, days=14, tz="Europe/Berlin"
    )
    assert isinstance(summary, m.Summary), summary
    assert (summary.days, summary.tz, len(summary.mood)) == (14, "Europe/Berlin", 14)
    assert [(day.mean, day.count) for day in summary.mood if day.count] == [(6.0, 1)]
    assert [(i.instrument, i.latest_total, i.count) for i in summary.instruments] == [
        (m.Instrument.PHQ9, 7, 1)
    ]
    assert [d.session_id for d in summary.dosing_sessions] == [session.id]
    assert summary.safety_flags == []

    # A therapist's read: the patient grants check-ins and the summary; the therapist mints a
    # patient-scoped read token for the grant and reads with it.
    therapist_account, therapist = await sign_up(kit, "therapist", "Dr. Lee")
    grant = await op("grants.create_grant").asyncio(
        client=patient,
        body=m.GrantCreate(
            therapist_email=therapist_account.email,
            scopes=[m.ReadScope.CHECKINSREAD, m.ReadScope.SUMMARYREAD],
        ),
    )
    assert isinstance(grant, m.GrantRead), grant
    assert (grant.state, grant.patient.id, grant.therapist.id) == (
        m.GrantState.ACTIVE,
        account.id,
        therapist_account.id,
    )

    patients = await op("therapist.list_patients").asyncio(client=therapist)
    assert isinstance(patients, m.SharedPatients), patients
    assert [(p.patient_id, p.grant_id) for p in patients.items] == [(account.id, grant.id)]

    read = await op("grants.mint_read_token").asyncio(
        grant_id=grant.id,
        client=therapist,
        body=m.BodyMintReadToken(scope="checkins:read summary:read"),
    )
    assert isinstance(read, m.ReadTokenResponse), read
    assert (read.patient_id, read.grant_id, read.scope) == (
        account.id,
        grant.id,
        "checkins:read summary:read",
    )
    assert 0 < read.expires_in <= 900
    reader = kit.bearer(read.access_token)

    shared = await op("therapist.list_shared_checkins").asyncio(
        patient_id=account.id, client=reader
    )
    assert isinstance(shared, m.PageCheckinRead), shared
    assert [(c.id, c.mood, c.note) for c in shared.items] == [(checkin.id, 6, "slept well")]
    assert shared.next_cursor is None

    their_summary = await op("therapist.get_patient_summary").asyncio(
        patient_id=account.id, client=reader, days=14, tz="Europe/Berlin"
    )
    assert isinstance(their_summary, m.Summary), their_summary
    assert [(day.mean, day.count) for day in their_summary.mood if day.count] == [(6.0, 1)]

    # What was not granted comes back as the documented problem, typed.
    refused = await op("therapist.list_shared_reflections").asyncio(
        patient_id=account.id, client=reader
    )
    assert isinstance(refused, m.Problem), refused
    assert (refused.status, refused.type_) == (403, "/problems/forbidden")

    # And the patient sees it all in the access log: listed, the journal opened, the reads.
    log = await op("privacy.get_access_log").asyncio(client=patient)
    assert isinstance(log, m.AccessLogPage), log
    assert sorted((e.resource, e.outcome) for e in log.items) == [
        ("checkins", m.AuditOutcome.ALLOWED),
        ("grant", m.AuditOutcome.ALLOWED),
        ("patients", m.AuditOutcome.ALLOWED),
        ("reflections", m.AuditOutcome.INSUFFICIENT_SCOPE),
        ("summary", m.AuditOutcome.ALLOWED),
    ]
