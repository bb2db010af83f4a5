"""What one patient page shows, read through the same gate and the same scoped queries as the API.

For each scope the grant carries, the page passes ``open_read`` (the API's gate) once, before
anything is read: a revoked or expired grant stops the page there, with the refusal recorded. Each
kind of data is then read through the access it got (``Scope.shared``: no private entry can be
read) and the page writes one audit record per kind it read, as the API writes one per request:
``list`` with the ids of the entries shown (timeline, chart and safety flags together), and
``summary`` for the figures. Kinds the grant does not carry are neither read nor shown.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.assessments.scoring import DISPLAY_NAME, band_of
from api.journal.cursors import decode_cursor
from api.journal.pages import PageQuery, read_page
from api.journal.references import hide_unseen_references
from api.journal.repository import EntryRepository, PageRequest
from api.journal.schemas import FUTURE_TOLERANCE
from api.models import Account, Checkin, DosingSession, ReadScope
from api.models.base import utcnow
from api.patients.access import GrantSeen, ReadAccess, open_grant, open_read
from api.resources import BY_NAME, RESOURCES
from api.safety_flags import service as safety_flags
from api.safety_flags.repository import FLAG_SCOPES
from api.safety_flags.schemas import FlagState, SafetyFlagRead
from api.settings import Settings
from api.summary import calculations as calc
from api.summary.schemas import Summary
from api.summary.service import build_summary
from api.web.chart import Chart, MoodReading, mood_chart
from api.web.local_time import LocalTime, patient_time
from api.web.timeline import Item, KindPage, Timeline, merge

PAGE_SIZE = 25
CHART_DAYS = 30
# In the order scope lists appear in.
SCOPE_LABELS = {
    **{resource.scope: resource.nouns for resource in RESOURCES},
    ReadScope.SUMMARY: "the summary",
}

# Words the templates show for stored values.
DISPLAY: dict[str, Any] = {
    "kinds": {resource.name: resource.label for resource in RESOURCES},
    "routes": {
        "iv": "IV",
        "im": "IM",
        "sublingual": "Sublingual",
        "oral": "Oral",
        "intranasal": "Intranasal",
        "other": "Other route",
    },
    "settings_words": {"clinic": "in clinic", "home": "at home", "other": "elsewhere"},
    "instruments": {instrument.value: name for instrument, name in DISPLAY_NAME.items()},
    "band_of": band_of,
    "backfill_after": calc.BACKFILL_AFTER,
}


@dataclass(frozen=True)
class Flag:
    record: SafetyFlagRead
    instrument: str  # display name: "PHQ-9"
    band: str

    @property
    def open(self) -> bool:
        return self.record.state is FlagState.OPEN


def _flag(record: SafetyFlagRead) -> Flag:
    return Flag(record, DISPLAY_NAME[record.instrument], band_of(record.instrument, record.total))


@dataclass
class PatientPage:
    patient_id: uuid.UUID
    patient_name: str
    expires_at: datetime
    scopes: list[ReadScope]
    clock: LocalTime  # the patient's zone: every date and time of the page is shown in it
    flags: list[Flag] = field(default_factory=list)  # open first, then acknowledged
    flags_known: bool = False  # the grant lets the page see flags (assessments or summary)

    @property
    def open_flags(self) -> list[Flag]:
        return [flag for flag in self.flags if flag.open]

    @property
    def acknowledged_flags(self) -> list[Flag]:
        return [flag for flag in self.flags if not flag.open]

    summary: Summary | None = None
    chart: Chart | None = None
    timeline: Timeline | None = None
    first_page: bool = True
    older_than: datetime | None = None  # on a page of older entries: where it starts

    @property
    def scope_labels(self) -> list[str]:
        return [SCOPE_LABELS[scope] for scope in self.scopes]

    def has(self, scope: ReadScope) -> bool:
        return scope in self.scopes


def labels(scopes: list[str]) -> list[str]:
    """A grant's scopes in words, in the page's order."""
    return [SCOPE_LABELS[scope] for scope in ReadScope if scope.value in scopes]


async def clocks_of(
    session: AsyncSession, patient_ids: list[uuid.UUID]
) -> dict[uuid.UUID, LocalTime]:
    """Each patient's zone (``patient_time``), for pages that list several patients."""
    accounts = await session.scalars(select(Account).where(Account.id.in_(patient_ids)))
    clocks = {account.id: patient_time(account) for account in accounts}
    return {patient_id: clocks.get(patient_id, patient_time(None)) for patient_id in patient_ids}


async def build(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    seen: GrantSeen,
    before: str | None,
) -> PatientPage:
    """Everything the page shows; raises the gate's ``ProblemError`` when access has ended."""
    reader = seen.reader()
    patient_id = seen.grant.patient_id
    scopes = [scope for scope in ReadScope if scope.value in reader.scopes]
    # Every gate first: nothing is read, and nothing recorded as read, unless all of them pass.
    accesses: dict[ReadScope, ReadAccess] = {}
    for scope in scopes:
        kind = scope.value.split(":")[0]
        action = "summary" if scope is ReadScope.SUMMARY else "list"
        accesses[scope] = await open_read(request, session, reader, patient_id, scope, kind, action)
    if not accesses:
        # A grant that carries no scope this page knows still shows the patient's name: the
        # gate is passed all the same (a revoked or expired grant shows nothing at all).
        await open_grant(request, session, reader, patient_id, "grant", "read")
    flag_access = None
    if any(scope in accesses for scope in FLAG_SCOPES):
        flag_access = await open_read(
            request, session, reader, patient_id, FLAG_SCOPES, "safety_flags", "list"
        )

    now = utcnow()
    clock = patient_time(await session.get(Account, patient_id))
    page = PatientPage(
        patient_id=patient_id,
        patient_name=seen.patient_name,
        expires_at=seen.grant.expires_at,
        scopes=scopes,
        clock=clock,
        first_page=before is None,
        older_than=None if before is None else decode_cursor(before)[0],
    )
    read_ids: dict[ReadScope, set[uuid.UUID]] = {scope: set() for scope in accesses}

    if ReadScope.SUMMARY in accesses:
        access = accesses[ReadScope.SUMMARY]
        page.summary = await build_summary(
            session,
            access.scope,
            settings,
            days=CHART_DAYS,
            tz=clock.zone,
            tz_name=clock.name,
            now=now,
        )

    page.timeline = await _timeline(session, settings, accesses, before, read_ids)
    if page.first_page:
        page.chart = await _chart(session, accesses, page.summary, clock, now, read_ids)
    if flag_access is not None:
        page.flags_known = True
        page.flags = await _flags(session, flag_access, page.summary, now)
        await flag_access.allowed([flag.record.id for flag in page.flags])

    for scope, access in accesses.items():
        if scope is ReadScope.SUMMARY:
            await access.allowed([], count=0)
        else:
            await access.allowed(sorted(read_ids[scope]))
    return page


async def _timeline(
    session: AsyncSession,
    settings: Settings,
    accesses: dict[ReadScope, ReadAccess],
    before: str | None,
    read_ids: dict[ReadScope, set[uuid.UUID]],
) -> Timeline | None:
    shared = [resource for resource in RESOURCES if resource.scope in accesses]
    if not shared:
        return None
    pages = []
    for resource in shared:
        kind = resource.name
        access = accesses[resource.scope]
        query = PageQuery(PageRequest(limit=PAGE_SIZE), before)
        _rows, body = await read_page(session, resource, access.scope, settings, query)
        shown = body.items  # type: ignore[attr-defined]
        await hide_unseen_references(session, access.scope, shown)
        items = [
            Item(kind=kind, at=getattr(entry, resource.time_column), id=entry.id, entry=entry)
            for entry in shown
        ]
        pages.append(KindPage(kind=kind, items=items, more=body.next_cursor is not None))  # type: ignore[attr-defined]
    timeline = merge(pages, PAGE_SIZE)
    for item in timeline.items:
        read_ids[BY_NAME[item.kind].scope].add(item.id)
    return timeline


async def _chart(
    session: AsyncSession,
    accesses: dict[ReadScope, ReadAccess],
    summary: Summary | None,
    clock: LocalTime,
    now: datetime,
    read_ids: dict[ReadScope, set[uuid.UUID]],
) -> Chart | None:
    """One point per shared check-in of the last 30 days (today and the 29 before it, in the
    patient's zone, as the summary counts them), dosing sessions marked."""
    if ReadScope.CHECKINS not in accesses:
        return None
    start = clock.days_before(now, CHART_DAYS - 1)
    # Check-ins may be stamped a few minutes ahead of the server's clock: keep those too.
    end = now + FUTURE_TOLERANCE
    checkins = await EntryRepository(session, Checkin, accesses[ReadScope.CHECKINS].scope).rows(
        Checkin.id,
        Checkin.recorded_at,
        Checkin.mood,
        where=(Checkin.recorded_at >= start, Checkin.recorded_at <= end),
    )
    read_ids[ReadScope.CHECKINS].update(row.id for row in checkins)
    dosing: list[datetime] = []
    if ReadScope.SESSIONS in accesses:
        sessions = await EntryRepository(
            session, DosingSession, accesses[ReadScope.SESSIONS].scope
        ).rows(
            DosingSession.id,
            DosingSession.started_at,
            where=(DosingSession.started_at >= start, DosingSession.started_at <= end),
        )
        read_ids[ReadScope.SESSIONS].update(row.id for row in sessions)
        dosing = [row.started_at for row in sessions]
    elif summary is not None:
        # The summary names its dosing sessions' times (mood around dosing), so they can be shown.
        dosing = [d.started_at for d in summary.dosing_sessions]
    readings = [MoodReading(at=row.recorded_at, mood=row.mood) for row in checkins]
    return mood_chart(readings, dosing, start=start, end=end, clock=clock)


async def _flags(
    session: AsyncSession, access: ReadAccess, summary: Summary | None, now: datetime
) -> list[Flag]:
    """Every open flag, and those acknowledged in the last 30 days (the summaries' rule): from
    the summary when the page has one, else read through the flags' own access."""
    if summary is not None:
        records = summary.safety_flags
    else:
        records = [
            flag
            for flag in await safety_flags.flags(session, access.scope, now=now)
            if calc.flag_shown_in_summary(flag.acknowledged_at, now=now)
        ]
    flags = [_flag(record) for record in records]
    # Open ones first, newest received first within each.
    return [flag for flag in flags if flag.open] + [flag for flag in flags if not flag.open]
