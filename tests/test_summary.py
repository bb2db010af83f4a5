"""GET /v1/me/summary: a history written through the API, its figures worked out by hand."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.settings import Settings
from tests.support.journal import Json, assert_problem, create, gad7, iso, now, phq9
from tests.support.people import Person, register


def midnight_utc_today() -> datetime:
    return now().replace(hour=0, minute=0, second=0, microsecond=0)


async def checkin(
    client: httpx.AsyncClient, person: Person, at: datetime, mood: int, **fields: Any
) -> Json:
    return await create(client, person, "checkins", recorded_at=iso(at), mood=mood, **fields)


async def dosing(client: httpx.AsyncClient, person: Person, at: datetime, **fields: Any) -> Json:
    return await create(client, person, "sessions", started_at=iso(at), **fields)


async def assessment(
    client: httpx.AsyncClient,
    person: Person,
    at: datetime,
    instrument: str,
    answers: list[int],
    **fields: Any,
) -> Json:
    return await create(
        client,
        person,
        "assessments",
        instrument=instrument,
        answers=answers,
        completed_at=iso(at),
        **fields,
    )


async def summary(
    client: httpx.AsyncClient, person: Person, *, days: int = 30, tz: str = "UTC"
) -> Json:
    response = await client.get(
        "/v1/me/summary", params={"days": str(days), "tz": tz}, headers=person.headers
    )
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def by_day(body: Json) -> dict[date, tuple[float | None, int]]:
    return {date.fromisoformat(d["day"]): (d["mean"], d["count"]) for d in body["mood"]}


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- daily mood ----------------------------------------------------------------------------------


async def test_daily_mood_is_the_mean_of_each_days_check_ins(
    client: httpx.AsyncClient, patient: Person
) -> None:
    midnight = midnight_utc_today()
    d1, d2 = midnight - timedelta(days=5), midnight - timedelta(days=4)
    first = await checkin(client, patient, d1 + timedelta(hours=8), 3)
    await checkin(client, patient, d1 + timedelta(hours=13), 4)
    await checkin(client, patient, d1 + timedelta(hours=23, minutes=59), 6)
    # 1/8 = 0.125: shown as 0.13, a half rounded up (float round() would give 0.12).
    for hour, mood in enumerate([1, 0, 0, 0, 0, 0, 0, 0]):
        await checkin(client, patient, d2 + timedelta(hours=hour), mood)
    await checkin(client, patient, midnight - timedelta(days=40), 10)  # before the window
    assert first["backfilled"] is True

    today_before = now().date()
    body = await summary(client, patient, days=30)
    today_after = now().date()

    assert body["days"] == 30
    assert body["tz"] == "UTC"
    days = [date.fromisoformat(d["day"]) for d in body["mood"]]
    assert len(days) == 30
    assert days[-1] in {today_before, today_after}
    assert days == [days[0] + timedelta(days=i) for i in range(30)]
    moods = by_day(body)
    assert moods[d1.date()] == (4.33, 3)  # (3 + 4 + 6) / 3 = 4.333...
    assert moods[d2.date()] == (0.13, 8)
    assert moods[(midnight - timedelta(days=3)).date()] == (None, 0)
    assert sum(count for _, count in moods.values()) == 11  # the 40-day-old one is not there


@pytest.mark.parametrize(
    ("tz", "shift"),
    [
        ("America/New_York", -1),  # 03:30 UTC is 22:30 or 23:30 the evening before
        ("Asia/Tokyo", 0),  # 03:30 UTC is 12:30 the same day
        ("Pacific/Kiritimati", 0),  # UTC+14: 17:30 the same day
    ],
)
async def test_tz_moves_a_late_evening_check_in_to_its_local_day(
    client: httpx.AsyncClient, patient: Person, tz: str, shift: int
) -> None:
    day = midnight_utc_today() - timedelta(days=6)
    await checkin(client, patient, day + timedelta(hours=3, minutes=30), 2)
    await checkin(client, patient, day + timedelta(hours=9), 8)  # same day in all three

    in_utc = by_day(await summary(client, patient, tz="UTC"))
    assert in_utc[day.date()] == (5.0, 2)
    assert in_utc[day.date() - timedelta(days=1)] == (None, 0)

    today_before = datetime.now(ZoneInfo(tz)).date()
    body = await summary(client, patient, tz=tz)
    today_after = datetime.now(ZoneInfo(tz)).date()
    assert body["tz"] == tz
    local = by_day(body)
    if shift:
        assert local[day.date() - timedelta(days=1)] == (2.0, 1)
        assert local[day.date()] == (8.0, 1)
    else:
        assert local[day.date()] == (5.0, 2)
    assert date.fromisoformat(body["mood"][-1]["day"]) in {today_before, today_after}


async def test_tz_decides_which_day_is_today(client: httpx.AsyncClient, patient: Person) -> None:
    # At any instant, Kiritimati (UTC+14) and Pago Pago (UTC-11) are on different dates.
    ahead = (await summary(client, patient, days=1, tz="Pacific/Kiritimati"))["mood"]
    behind = (await summary(client, patient, days=1, tz="Pacific/Pago_Pago"))["mood"]
    assert len(ahead) == len(behind) == 1
    assert date.fromisoformat(ahead[0]["day"]) > date.fromisoformat(behind[0]["day"])


# --- instruments, dosing windows, safety flags ---------------------------------------------------


async def test_instrument_trends_take_the_baseline_before_the_first_dosing_session(
    client: httpx.AsyncClient, patient: Person
) -> None:
    first_dose = midnight_utc_today() - timedelta(days=10) + timedelta(hours=12)
    await dosing(client, patient, first_dose)
    await dosing(client, patient, first_dose + timedelta(days=5))  # later: moves no baseline
    await assessment(client, patient, first_dose - timedelta(days=20), "phq9", phq9(20))
    baseline = await assessment(client, patient, first_dose - timedelta(days=2), "phq9", phq9(16))
    await assessment(client, patient, first_dose + timedelta(days=1), "phq9", phq9(12))
    latest = await assessment(client, patient, now() - timedelta(days=1), "phq9", phq9(4))
    # GAD-7 only after dosing: its baseline is its first score.
    gad_first = await assessment(client, patient, first_dose + timedelta(days=2), "gad7", gad7(12))
    gad_latest = await assessment(client, patient, now() - timedelta(days=2), "gad7", gad7(7))

    instruments = (await summary(client, patient))["instruments"]

    assert [i["instrument"] for i in instruments] == ["phq9", "gad7"]
    phq, gad = instruments
    assert phq["baseline_total"] == 16
    assert instant(phq["baseline_at"]) == instant(baseline["completed_at"])
    assert phq["latest_total"] == 4
    assert instant(phq["latest_at"]) == instant(latest["completed_at"])
    assert phq["change"] == -12
    assert phq["response"] is True  # 4 <= 16 / 2
    assert phq["remission"] is True  # 4 < 5
    assert phq["count"] == 4

    assert gad["baseline_total"] == 12
    assert instant(gad["baseline_at"]) == instant(gad_first["completed_at"])
    assert gad["latest_total"] == 7
    assert instant(gad["latest_at"]) == instant(gad_latest["completed_at"])
    assert gad["change"] == -5
    assert gad["response"] is False  # 7 > 12 / 2
    assert gad["remission"] is False  # 7 >= 5
    assert gad["count"] == 2
    assert (phq["baseline_basis"], gad["baseline_basis"]) == (
        "before_first_session",
        "first_available",
    )
    assert (phq["meaningful_change"], gad["meaningful_change"]) == ("improved", "improved")
    assert (phq["meaningful_change_points"], gad["meaningful_change_points"]) == (5, 4)
    second_dose = first_dose + timedelta(days=5)
    since_second = (instant(latest["completed_at"]) - second_dose) // timedelta(days=1)
    assert [p["days_since_dosing"] for p in phq["series"]] == [None, None, 1, since_second]


async def test_a_small_drop_from_a_low_baseline_is_neither_response_nor_remission(
    client: httpx.AsyncClient, patient: Person
) -> None:
    first_dose = now() - timedelta(days=10)
    await dosing(client, patient, first_dose)
    await assessment(client, patient, first_dose - timedelta(days=1), "phq9", phq9(3))
    await assessment(client, patient, now() - timedelta(days=1), "phq9", phq9(1))
    await assessment(client, patient, now() - timedelta(days=1), "pcl5", [2] * 20)

    phq, pcl = (await summary(client, patient))["instruments"]

    assert (phq["response"], phq["remission"]) == (None, None)
    assert phq["response_withheld"] == phq["remission_withheld"]
    assert "below 10" in phq["response_withheld"]
    assert phq["meaningful_change"] == "no_meaningful_change"
    assert (pcl["response"], pcl["remission"]) == (None, None)
    assert "PCL-5" in pcl["response_withheld"]


async def test_equal_completion_times_are_ordered_by_when_they_arrived(
    client: httpx.AsyncClient, patient: Person
) -> None:
    at = now() - timedelta(days=3)
    await assessment(client, patient, at, "phq9", phq9(20))
    await assessment(client, patient, at, "phq9", phq9(2))  # received second: the latest

    (phq,) = (await summary(client, patient))["instruments"]

    assert (phq["baseline_total"], phq["latest_total"]) == (20, 2)
    assert [p["total"] for p in phq["series"]] == [20, 2]


async def test_without_dosing_the_baseline_is_the_first_score(
    client: httpx.AsyncClient, patient: Person
) -> None:
    start = midnight_utc_today() - timedelta(days=20)
    await assessment(client, patient, start + timedelta(days=5), "phq9", phq9(9))
    await assessment(client, patient, start, "phq9", phq9(18))  # sent later, taken first
    await assessment(client, patient, start + timedelta(days=10), "phq9", phq9(10))

    (phq,) = (await summary(client, patient))["instruments"]

    assert (phq["baseline_total"], phq["latest_total"], phq["change"]) == (18, 10, -8)
    assert phq["baseline_basis"] == "first_available"
    assert phq["meaningful_change"] == "improved"  # 8 points, PHQ-9's 5 or more
    # No dosing session: nothing to call a response to treatment, and the summary says why.
    assert (phq["response"], phq["remission"]) == (None, None)
    assert "dosing session" in phq["response_withheld"]
    assert phq["count"] == 3
    assert [p["total"] for p in phq["series"]] == [18, 9, 10]
    assert [p["backfilled"] for p in phq["series"]] == [True, True, True]


async def test_mood_around_a_dosing_session_uses_its_own_windows(
    client: httpx.AsyncClient, patient: Person
) -> None:
    at = midnight_utc_today() - timedelta(days=10) + timedelta(hours=12)
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    session = await dosing(client, patient, at)
    earlier = await dosing(client, patient, at - timedelta(days=15))  # nothing around it
    for offset, mood in [
        (-73 * hour, 0),  # before the 72 hours
        (-72 * hour, 2),  # the before window includes its start
        (-48 * hour, 4),
        (-minute, 6),
        (timedelta(0), 10),  # at the session itself: in no window
        (hour, 7),
        (24 * hour, 8),  # the after windows include their end
        (24 * hour + minute, 1),
        (72 * hour, 3),
        (timedelta(days=7), 9),
        (timedelta(days=7) + minute, 10),  # after the 7 days
    ]:
        await checkin(client, patient, at + offset, mood)

    body = await summary(client, patient)

    old_windows = ("session_id", "started_at", "before_72h", "after_24h", "after_72h", "after_7d")
    assert [{k: d[k] for k in old_windows} for d in body["dosing_sessions"]] == [
        {
            "session_id": earlier["id"],
            "started_at": earlier["started_at"],
            "before_72h": None,
            "after_24h": None,
            "after_72h": None,
            "after_7d": None,
        },
        {
            "session_id": session["id"],
            "started_at": session["started_at"],
            "before_72h": 4.0,  # (2 + 4 + 6) / 3
            "after_24h": 7.5,  # (7 + 8) / 2
            "after_72h": 4.75,  # (7 + 8 + 1 + 3) / 4
            "after_7d": 5.6,  # (7 + 8 + 1 + 3 + 9) / 5
        },
    ]
    # The windows read check-ins outside the days of daily mood too.
    assert (await summary(client, patient, days=1))["dosing_sessions"] == body["dosing_sessions"]


async def test_every_open_safety_flag_comes_with_crisis_resources(
    client: httpx.AsyncClient, patient: Person, settings: Settings
) -> None:
    old = await assessment(client, patient, now() - timedelta(days=30), "phq9", phq9(10, item9=2))
    flagged = await assessment(client, patient, now() - timedelta(days=2), "phq9", phq9(4, item9=1))
    later = await assessment(client, patient, now() - timedelta(days=1), "phq9", phq9(3))

    body = await summary(client, patient)

    # Both stay open, the one completed 30 days ago too: a flag never expires. Newest received
    # first; the later PHQ-9 with item 9 at 0 is shown beside each, and closes neither.
    assert [
        (f["assessment_id"], f["instrument"], f["total"], f["completed_at"], f["state"])
        for f in body["safety_flags"]
    ] == [
        (flagged["id"], "phq9", 4, flagged["completed_at"], "open"),
        (old["id"], "phq9", 10, old["completed_at"], "open"),
    ]
    assert {f["latest_phq9"]["assessment_id"] for f in body["safety_flags"]} == {later["id"]}
    assert [f["item_value"] for f in body["safety_flags"]] == [1, 2]
    assert body["crisis_resources"]
    assert body["crisis_resources"] == [
        {"phone": None, "text": None, "url": None, **resource}
        for resource in settings.crisis_resources
    ]


async def test_without_a_flag_there_are_no_flags_and_no_resources(
    client: httpx.AsyncClient, patient: Person
) -> None:
    await assessment(client, patient, now() - timedelta(days=15), "phq9", phq9(12))
    await assessment(client, patient, now() - timedelta(hours=1), "phq9", phq9(12))
    await assessment(client, patient, now() - timedelta(hours=1), "gad7", gad7(15))

    body = await summary(client, patient)

    assert body["safety_flags"] == []
    assert body["crisis_resources"] == []
    assert [i["instrument"] for i in body["instruments"]] == ["phq9", "gad7"]


async def test_an_empty_journal_has_an_empty_summary(
    client: httpx.AsyncClient, patient: Person
) -> None:
    body = await summary(client, patient, days=7)
    assert [d["mean"] for d in body["mood"]] == [None] * 7
    assert body["instruments"] == body["dosing_sessions"] == body["safety_flags"] == []
    assert body["crisis_resources"] == []


async def test_private_entries_count_in_the_patients_own_summary(
    client: httpx.AsyncClient, patient: Person
) -> None:
    at = midnight_utc_today() - timedelta(days=4) + timedelta(hours=12)
    session = await dosing(client, patient, at, private=True)
    await checkin(client, patient, at - timedelta(hours=2), 2, private=True)
    await checkin(client, patient, at - timedelta(hours=1), 4)
    await checkin(client, patient, at + timedelta(hours=2), 9, private=True)
    flagged = await assessment(
        client, patient, now() - timedelta(days=1), "phq9", phq9(8, item9=1), private=True
    )

    body = await summary(client, patient)

    assert by_day(body)[at.date()] == (5.0, 3)  # (2 + 4 + 9) / 3
    assert [
        (s["session_id"], s["before_72h"], s["after_24h"]) for s in body["dosing_sessions"]
    ] == [(session["id"], 3.0, 9.0)]
    assert [f["assessment_id"] for f in body["safety_flags"]] == [flagged["id"]]
    assert body["crisis_resources"]
    assert [(i["instrument"], i["latest_total"]) for i in body["instruments"]] == [("phq9", 8)]


async def test_another_patients_entries_do_not_count(
    client: httpx.AsyncClient, patient: Person
) -> None:
    other = await register(client, "patient")
    await checkin(client, other, now() - timedelta(hours=1), 1)
    await assessment(client, other, now() - timedelta(hours=1), "phq9", phq9(9, item9=1))
    await dosing(client, other, now() - timedelta(days=2))

    body = await summary(client, patient)

    assert all(d["count"] == 0 for d in body["mood"])
    assert body["instruments"] == body["dosing_sessions"] == body["safety_flags"] == []


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tz",
    ["Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime", "Europe/Berlin ", "", "zone.tab"],
)
async def test_a_bad_tz_is_a_400_problem(
    client: httpx.AsyncClient, patient: Person, tz: str
) -> None:
    response = await client.get("/v1/me/summary", params={"tz": tz}, headers=patient.headers)
    assert_problem(response, 400)


@pytest.mark.parametrize("days", ["0", "366", "-1", "seven"])
async def test_days_out_of_range_is_a_422_problem(
    client: httpx.AsyncClient, patient: Person, days: str
) -> None:
    response = await client.get("/v1/me/summary", params={"days": days}, headers=patient.headers)
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["query", "days"]


@pytest.mark.parametrize("days", [1, 365])
async def test_days_at_the_limits_give_that_many_days(
    client: httpx.AsyncClient, patient: Person, days: int
) -> None:
    body = await summary(client, patient, days=days)
    assert len(body["mood"]) == days


async def test_a_therapist_has_no_summary_of_their_own(
    client: httpx.AsyncClient, therapist: Person
) -> None:
    assert_problem(await client.get("/v1/me/summary", headers=therapist.headers), 403)


# --- mood on the drug's time course ----------------------------------------------------------------


async def test_sessions_take_an_end_that_must_come_after_the_start(
    client: httpx.AsyncClient, patient: Person
) -> None:
    start = now() - timedelta(days=3)
    session = await dosing(client, patient, start, ended_at=iso(start + timedelta(hours=3)))
    assert instant(session["ended_at"]) == start + timedelta(hours=3)
    before = await client.post(
        "/v1/sessions",
        json={"started_at": iso(start), "ended_at": iso(start), "route": "im", "setting": "clinic"},
        headers=patient.headers,
    )
    assert_problem(before, 422)
    moved = await client.patch(
        f"/v1/sessions/{session['id']}",
        json={"started_at": iso(start + timedelta(hours=4))},
        headers={**patient.headers, "If-Match": '"1"'},
    )
    assert_problem(moved, 422)
    cleared = await client.patch(
        f"/v1/sessions/{session['id']}",
        json={"ended_at": None},
        headers={**patient.headers, "If-Match": '"1"'},
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["ended_at"] is None


async def test_the_summary_reports_disjoint_windows_and_durability(
    client: httpx.AsyncClient, patient: Person
) -> None:
    start = midnight_utc_today() - timedelta(days=12) + timedelta(hours=10)
    session = await dosing(client, patient, start, ended_at=iso(start + timedelta(hours=3)))
    hour = timedelta(hours=1)
    for offset, mood in [
        (-20 * hour, 4),
        (2 * hour, 10),  # acute: during, never effect
        (5 * hour, 8),
        (6 * hour, 8),
        (30 * hour, 7),
        (100 * hour, 4),  # back at the before-mean on day 4
    ]:
        await checkin(client, patient, start + offset, mood)
    later = await dosing(client, patient, start + timedelta(days=9))

    body = await summary(client, patient)
    first = next(d for d in body["dosing_sessions"] if d["session_id"] == session["id"])
    windows = {w["name"]: w for w in first["windows"]}
    assert [w["name"] for w in first["windows"]] == [
        "before",
        "during",
        "day_0_1",
        "days_1_3",
        "days_3_7",
        "days_7_14",
    ]
    assert (windows["before"]["mean"], windows["during"]["mean"]) == (4.0, 10.0)
    assert (windows["day_0_1"]["mean"], windows["day_0_1"]["checkins"]) == (8.0, 2)
    assert windows["days_1_3"]["mean"] == 7.0
    assert windows["days_3_7"]["mean"] == 4.0
    assert windows["days_7_14"]["cut_short"] is True
    assert instant(windows["days_7_14"]["end"]) == instant(later["started_at"])
    assert first["acute_end_assumed"] is False
    assert first["durability_days"] == 4
    # The old nested windows stay for v1 clients, the acute check-in in them as before.
    assert first["after_24h"] == round((10 + 8 + 8) / 3, 2)
