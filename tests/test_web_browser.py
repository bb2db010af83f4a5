"""The therapist web view in a real browser: Debian's Chromium, driven by Playwright, against a
real server process on loopback (``uvicorn api.main:app``, as deployed).

The server shares the suite's database and key folder, so the patients and journals a test
writes through the in-process API are the ones the browser reads. Each run saves screenshots
of a patient's page to ``tests/artifacts/`` (printed at the end of the screenshot test).
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, ConsoleMessage, Dialog, Page
from sqlalchemy import select, update

from api.models import Login, WebSession
from api.settings import Settings
from tests.support.browser import (
    CSP,
    LAPTOP,
    PHONE,
    artifact_path,
    axe_context,
    axe_violations,
    chromium,
    chromium_path,
    contrast,
    copy_to,
    demo_journal,
    person,
    sign_in,
    write,
)
from tests.support.people import PASSWORD, register
from tests.support.server import ServerProcess, running_server, service_environment
from tests.support.sharing import give_grant

# `UPDATE_DOCS_SCREENSHOT=1 pytest tests/test_web_browser.py` refreshes the README's pictures.
DOCS = Path(__file__).resolve().parents[1] / "docs"
DOCS_SCREENSHOT = DOCS / "therapist-patient-page.png"
DOCS_PHONE_SCREENSHOT = DOCS / "therapist-patient-page-phone.png"


@pytest.fixture(scope="module")
async def server(
    app: FastAPI, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServerProcess]:
    # `app` first: it has made the keys in the data folder that the server then reads.
    env = service_environment(settings.database_url, settings.data_dir, web_cookie_secure="false")
    log = tmp_path_factory.mktemp("web-server") / "server.log"
    async with running_server(env, log) as process:
        yield process


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as started:
        yield started


class Watched:
    """A page, and what it did that it must not: dialogs opened, CSP violations reported."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.csp_violations: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)

    async def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[Watched]:
    """A fresh browser profile (no cookies) with one tab, the size of a laptop screen."""
    context = await browser.new_context(viewport=LAPTOP)
    try:
        yield Watched(await context.new_page())
    finally:
        await context.close()


async def session_cookie(page: Page) -> dict[str, str]:
    (cookie,) = [c for c in await page.context.cookies() if c["name"] == "therapist_session"]
    return {"name": cookie["name"], "value": cookie["value"], "url": page.url}


async def test_sign_in_lists_only_patients_with_a_live_grant(
    server: ServerProcess, tab: Watched, client: httpx.AsyncClient
) -> None:
    therapist = await person(client, "therapist", "Dr Rowan Hale")
    shared = await person(client, "patient", "Maya Lindqvist")
    elsewhere = await person(client, "patient", "Sam Other")
    revoked = await person(client, "patient", "Alex Revoked")
    await give_grant(client, shared, therapist)
    await give_grant(client, elsewhere, await register(client, "therapist"))
    grant = await give_grant(client, revoked, therapist)
    await client.delete(f"/v1/grants/{grant['id']}", headers=revoked.headers)

    page = tab.page
    await sign_in(page, server.base_url, therapist.email)
    assert page.url == f"{server.base_url}/therapist/"
    await page.get_by_role("heading", name="Your patients").wait_for()
    rows = page.locator("table.patients tbody tr")
    assert await rows.count() == 1
    assert await rows.first.locator("th").inner_text() == "Maya Lindqvist"
    body = await page.content()
    assert "Sam Other" not in body
    assert "Alex Revoked" not in body
    cookie = await session_cookie(page)
    (stored,) = [c for c in await page.context.cookies() if c["name"] == "therapist_session"]
    assert stored["httpOnly"]
    assert stored["sameSite"] == "Strict"
    assert cookie["value"]

    await page.get_by_role("link", name="Maya Lindqvist").click()
    await page.get_by_role("heading", name="Maya Lindqvist", level=1).wait_for()
    assert tab.csp_violations == []


async def test_a_patient_is_refused_with_a_polite_page(
    server: ServerProcess, tab: Watched, client: httpx.AsyncClient
) -> None:
    patient = await person(client, "patient", "Just A Patient")
    await sign_in(tab.page, server.base_url, patient.email)
    await tab.page.get_by_role("heading", name="These pages are for therapists").wait_for()
    assert [c for c in await tab.page.context.cookies() if c["name"] == "therapist_session"] == []


async def test_a_script_in_a_reflection_is_only_text(
    server: ServerProcess, tab: Watched, client: httpx.AsyncClient
) -> None:
    therapist = await person(client, "therapist", "Dr Script Test")
    patient = await person(client, "patient", "Robin <img src=x onerror=alert(2)>")
    hostile = "<script>alert(1)</script>"
    await write(client, patient, "reflections", text=hostile, emotions=["<b>bold</b>"])
    await write(client, patient, "checkins", mood=5, note="<svg onload=alert(3)>")
    await give_grant(client, patient, therapist)

    page = tab.page
    await sign_in(page, server.base_url, therapist.email)
    response = await page.goto(f"{server.base_url}/therapist/patients/{patient.id}")
    assert response is not None
    assert response.status == 200
    assert await page.get_by_text(hostile, exact=True).count() == 1
    assert await page.locator("script").count() == 0
    assert await page.locator("main img").count() == 0
    assert await page.locator("b").count() == 0
    assert await page.locator("svg[onload]").count() == 0
    assert await page.get_by_role("heading", level=1).inner_text() == (
        "Robin <img src=x onerror=alert(2)>"
    )
    assert tab.dialogs == []
    assert tab.csp_violations == []


async def test_the_patient_page_shows_flags_scores_chart_and_never_private_entries(
    server: ServerProcess,
    tab: Watched,
    client: httpx.AsyncClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    therapist = await person(client, "therapist", "Dr Anna Keller")
    patient = await person(client, "patient", "Maya Lindqvist")
    demo = await demo_journal(client, patient)
    await give_grant(client, patient, therapist)

    page = tab.page
    await sign_in(page, server.base_url, therapist.email)
    response = await page.goto(f"{server.base_url}/therapist/patients/{patient.id}")
    assert response is not None
    assert response.status == 200
    assert response.headers["content-security-policy"] == CSP
    html = await page.content()
    assert demo.private_text not in html

    # The safety flag comes first in the page, before any other section.
    safety = page.locator("section.safety")
    assert await safety.is_visible()
    assert "PHQ-9 item 9 answered above 0" in await safety.inner_text()
    first_section = page.locator("main section").first
    assert await first_section.get_attribute("class") == "safety"
    # The stylesheet is applied (the CSP let it in): the flag is drawn in the alert colour.
    border = await safety.evaluate("e => getComputedStyle(e).borderLeftColor")
    assert border == "rgb(164, 22, 26)"

    scores = page.locator("table.scores tbody tr")
    assert await scores.count() == 2
    phq9 = await scores.filter(has_text="PHQ-9").inner_text()
    assert "18" in phq9
    assert "moderately severe" in phq9
    assert "9" in phq9
    assert "\N{MINUS SIGN}9" in phq9

    chart = page.get_by_role("img", name=re.compile("^Chart of mood check-ins"))
    assert await chart.count() == 1  # the tall drawing for phones is hidden here
    assert await chart.get_attribute("class") == "mood-chart mood-chart-wide"
    assert await chart.locator("circle.mood-point").count() == demo.shared_checkins
    assert await chart.locator("line.dosing-marker").count() == demo.sessions
    words = await page.locator(".chart-words").inner_text()
    assert f"{demo.shared_checkins} mood check-ins" in words
    assert "Dosing session 3 of 3" in words
    # The line stands out from the panel at 3:1 or better (WCAG 1.4.11).
    line = await page.locator("svg.mood-chart-wide polyline.mood-line").evaluate(
        "e => { const s = getComputedStyle(e); return [s.stroke, s.strokeOpacity,"
        " getComputedStyle(e.closest('.panel')).backgroundColor] }"
    )
    stroke = line[0].replace("rgb(", "rgba(").replace(")", f", {line[1]})")
    assert contrast(stroke, line[2]) >= 3

    # The chart's table holds every check-in the journal has in the window, oldest first, in
    # the patient's zone (UTC: this account names none), with the dosing sessions.
    await page.get_by_text("The chart as a table").click()
    rows = await page.locator("table.chart-data-table tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent.trim()))"
    )

    def day_and_time(at: datetime) -> tuple[str, str]:
        at = at.astimezone(UTC)
        return f"{at:%a} {at.day} {at:%b %Y}", f"{at:%H:%M}"

    assert [(day, time, int(mood)) for day, time, mood, dosing in rows if not dosing] == [
        (*day_and_time(at), mood) for at, mood in sorted(demo.checkins)
    ]
    assert [(day, time) for day, time, _mood, dosing in rows if dosing] == [
        day_and_time(at) for at in sorted(demo.session_times)
    ]
    # And every check-in the journal below shows is a line of it, with the same mood.
    tabled = {(f"{day}, {time} UTC", mood) for day, time, mood, dosing in rows if not dosing}
    shown = page.locator("article.entry-checkins")
    assert await shown.count() > 0
    for n in range(await shown.count()):
        entry = shown.nth(n)
        heading = await entry.get_by_role("heading", level=3).inner_text()
        kind, when = heading.split(", ", 1)
        assert kind == "Check-in"  # sentence case, and the day in the heading itself
        assert (when, await entry.locator(".mood-value strong").inner_text()) in tabled

    entries = page.locator("ol.timeline > li")
    assert await entries.count() == 25
    assert await page.get_by_role("link", name="Older entries").count() == 1
    assert tab.csp_violations == []

    laptop = artifact_path("therapist-patient-page.png")
    await page.screenshot(path=str(laptop), full_page=True)
    # The top of the page, as docs/therapist-patient-page.png shows it.
    top = artifact_path("therapist-patient-page-top.png")
    await page.screenshot(
        path=str(top), full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": 2000}
    )
    await page.set_viewport_size(PHONE)
    phone = artifact_path("therapist-patient-page-phone.png")
    await page.screenshot(path=str(phone), full_page=True)
    phone_top = artifact_path("therapist-patient-page-phone-top.png")
    await page.screenshot(
        path=str(phone_top), full_page=True, clip={"x": 0, "y": 0, "width": 390, "height": 2200}
    )
    assert laptop.stat().st_size > 10_000
    assert phone.stat().st_size > 10_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        copy_to(top, DOCS_SCREENSHOT)
        copy_to(phone_top, DOCS_PHONE_SCREENSHOT)
    with capsys.disabled():
        print(f"\nscreenshots of the patient page: {laptop.parent}")

    await page.get_by_role("link", name="Older entries").click()
    older = re.compile(r"^Journal, entries before \w{3} \d+ \w{3} \d{4}, \d\d:\d\d UTC$")
    await page.get_by_role("heading", name=older).wait_for()
    # The tab's title says which page of the journal this is,
    # and that flags are open (the demo journal has two).
    title = await page.title()
    assert re.match(r"2 open safety flags, Maya Lindqvist, journal entries before .+ UTC · ", title)
    assert demo.private_text not in await page.content()
    assert await page.locator("svg.mood-chart").count() == 0


async def test_after_the_patient_revokes_the_next_page_load_is_refused(
    server: ServerProcess, tab: Watched, client: httpx.AsyncClient
) -> None:
    therapist = await person(client, "therapist", "Dr Revoke Test")
    patient = await person(client, "patient", "Jo Revokes")
    await write(client, patient, "reflections", text="Words for my therapist only while shared")
    grant = await give_grant(client, patient, therapist)

    page = tab.page
    await sign_in(page, server.base_url, therapist.email)
    url = f"{server.base_url}/therapist/patients/{patient.id}"
    await page.goto(url)
    await page.get_by_text("Words for my therapist only while shared").wait_for()

    revoked = await client.delete(f"/v1/grants/{grant['id']}", headers=patient.headers)
    assert revoked.status_code == 204, revoked.text
    response = await page.reload()
    assert response is not None
    assert response.status == 403
    await page.get_by_role("heading", name="Access has ended").wait_for()
    html = await page.content()
    assert "Words for my therapist only while shared" not in html
    assert "Jo Revokes" not in html
    log = (await client.get("/v1/me/access-log", headers=patient.headers)).json()["items"]
    assert log[0]["outcome"] == "no_grant"
    # Nor is the patient listed any more.
    await page.goto(f"{server.base_url}/therapist/")
    assert "Jo Revokes" not in await page.content()


async def test_sign_out_ends_the_session_and_the_old_cookie_no_longer_works(
    server: ServerProcess, tab: Watched, browser: Browser, client: httpx.AsyncClient
) -> None:
    therapist = await person(client, "therapist", "Dr Sign Out")
    page = tab.page
    await sign_in(page, server.base_url, therapist.email)
    old = await session_cookie(page)

    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_text("You are signed out.").wait_for()
    assert page.url.startswith(f"{server.base_url}/therapist/sign-in")

    # The old cookie, put back in a fresh browser, opens nothing.
    context = await browser.new_context()
    try:
        await context.add_cookies([old])  # type: ignore[list-item]
        stale = await context.new_page()
        await stale.goto(f"{server.base_url}/therapist/")
        assert stale.url.startswith(f"{server.base_url}/therapist/sign-in")
        await stale.get_by_role("heading", name="You have been signed out").wait_for()
    finally:
        await context.close()
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.get(
            "/therapist/", headers={"Cookie": f"{old['name']}={old['value']}"}
        )
        assert response.status_code == 303


async def test_forms_without_their_csrf_token_are_refused(
    server: ServerProcess, tab: Watched, client: httpx.AsyncClient
) -> None:
    therapist = await person(client, "therapist", "Dr Csrf Test")
    page = tab.page
    await page.goto(f"{server.base_url}/therapist/sign-in")
    # Tampered by the test (a page of ours runs no script, and other sites cannot read it).
    await page.locator("input[name=csrf_token]").evaluate("e => { e.value = 'forged' }")
    await page.get_by_label("Email").fill(therapist.email)
    await page.get_by_label("Password").fill("a long enough passphrase")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("This form has expired. Please try again.").wait_for()
    assert [c for c in await page.context.cookies() if c["name"] == "therapist_session"] == []

    await sign_in(page, server.base_url, therapist.email)
    # The sign-out form's token (the patient list has another form, to make a pairing code).
    sign_out_form = page.get_by_role("navigation", name="Account")
    await sign_out_form.locator("input[name=csrf_token]").evaluate("e => e.remove()")
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("heading", name="You are still signed in").wait_for()
    await page.goto(f"{server.base_url}/therapist/")
    await page.get_by_role("heading", name="Your patients").wait_for()

    async with httpx.AsyncClient(base_url=server.base_url) as http:
        cookie = await session_cookie(page)
        forged = await http.post(
            "/therapist/sign-out",
            data={"csrf_token": "guessed"},
            headers={"Cookie": f"{cookie['name']}={cookie['value']}"},
        )
        assert forged.status_code == 403


async def test_an_idle_session_ends(
    server: ServerProcess, tab: Watched, app: FastAPI, client: httpx.AsyncClient
) -> None:
    therapist = await person(client, "therapist", "Dr Idle Test")
    patient = await person(client, "patient", "Ines Idle")
    await write(client, patient, "reflections", text="The page I was reading")
    await give_grant(client, patient, therapist)
    page = tab.page
    await sign_in(page, server.base_url, therapist.email)
    reading = f"{server.base_url}/therapist/patients/{patient.id}"
    await page.goto(reading)
    await page.get_by_text("The page I was reading").wait_for()
    async with app.state.sessionmaker() as session:
        logins = select(Login.id).where(Login.account_id == uuid.UUID(therapist.id))
        await session.execute(
            update(WebSession)
            .where(WebSession.login_id.in_(logins))
            .values(last_seen_at=datetime.now(UTC) - timedelta(minutes=16))
        )
        await session.commit()
    await page.reload()
    assert page.url.startswith(f"{server.base_url}/therapist/sign-in")
    await page.get_by_role("heading", name="You have been signed out").wait_for()
    await page.locator(".warning").get_by_text("after 15 minutes without activity").wait_for()
    assert "The page I was reading" not in await page.content()
    # A wrong password first: the email stays typed in, only the password is to retype.
    await page.get_by_label("Email").fill(therapist.email)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("The email or password is incorrect.").wait_for()
    assert await page.get_by_label("Email").input_value() == therapist.email
    assert await page.get_by_label("Password").input_value() == ""
    await page.get_by_label("Password").fill(PASSWORD)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()
    # Back on the page being read, not the list of patients.
    assert page.url == reading
    await page.get_by_text("The page I was reading").wait_for()


async def test_the_pages_work_from_the_keyboard(
    server: ServerProcess, tab: Watched, client: httpx.AsyncClient
) -> None:
    therapist = await person(client, "therapist", "Dr Keys")
    patient = await person(client, "patient", "Kim Keyboard")
    await give_grant(client, patient, therapist)
    page = tab.page
    await sign_in(page, server.base_url, therapist.email)
    await page.get_by_role("heading", name="Your patients").wait_for()
    # The first Tab reaches the skip link; Enter on it moves past the header.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to main content"
    await page.keyboard.press("Enter")
    await page.wait_for_function("document.activeElement.id === 'main'")
    # From there Tab reaches the patient's link, and Enter opens it.
    for _ in range(5):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.textContent") == "Kim Keyboard":
            break
    else:
        pytest.fail("the patient's link was never reached with Tab")
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # the focus is visible
    await page.keyboard.press("Enter")
    await page.get_by_role("heading", name="Kim Keyboard", level=1).wait_for()


async def test_every_page_passes_axe_at_both_sizes(
    server: ServerProcess, browser: Browser, client: httpx.AsyncClient
) -> None:
    """axe-core, WCAG 2.1 A and AA rules, on each page the view has, on a laptop and a phone:
    no violation at all. Each page is also saved as a screenshot (tests/artifacts/)."""
    therapist = await person(client, "therapist", "Dr Ana Axe")
    patient = await person(client, "patient", "Maya Lindqvist")
    await demo_journal(client, patient)
    await give_grant(client, patient, therapist)
    base = server.base_url
    patient_page = f"{base}/therapist/patients/{patient.id}"
    found: dict[str, list[str]] = {}
    checked: list[str] = []
    for size, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        context = await axe_context(browser, viewport)
        try:
            tab = Watched(await context.new_page())
            page = tab.page

            async def check(name: str, size: str = size, page: Page = page) -> None:
                found[f"{name} ({size})"] = await axe_violations(page)
                checked.append(f"{name} ({size})")
                await page.screenshot(path=str(artifact_path(f"{name}-{size}.png")), full_page=True)

            await page.goto(f"{base}/therapist/sign-in")
            await check("sign-in")
            await page.get_by_label("Email").fill(therapist.email)
            await page.get_by_label("Password").fill("not the password")
            await page.get_by_role("button", name="Sign in").click()
            await page.get_by_text("The email or password is incorrect.").wait_for()
            await check("sign-in-refused")
            await page.get_by_label("Password").fill(PASSWORD)
            async with page.expect_navigation():
                await page.get_by_role("button", name="Sign in").click()
            await page.get_by_role("heading", name="Your patients").wait_for()
            await check("patients")
            await page.goto(patient_page)
            await page.get_by_text("The chart as a table").click()  # its table checked too
            await check("patient")
            await page.get_by_role("link", name="Older entries").click()
            await page.get_by_role(
                "heading", name=re.compile("^Journal, entries before")
            ).wait_for()
            await check("patient-older-entries")
            await page.goto(f"{base}/therapist/patients/{uuid.uuid4()}")
            await check("not-found")
            await page.get_by_role("button", name="Sign out").click()
            await page.get_by_text("You are signed out.").wait_for()
            await check("signed-out")
            await page.goto(f"{base}/therapist/sign-in?ended=1&next=/therapist/")
            await check("session-ended")
            assert tab.csp_violations == []  # axe ran without loosening the policy
        finally:
            await context.close()
    assert len(checked) == 16
    assert {page: lines for page, lines in found.items() if lines} == {}


async def test_on_a_phone_the_chart_and_tables_keep_their_size_and_scroll_from_the_keyboard(
    server: ServerProcess, browser: Browser, client: httpx.AsyncClient
) -> None:
    therapist = await person(client, "therapist", "Dr Pocket")
    patient = await person(client, "patient", "Maya Lindqvist")
    await demo_journal(client, patient)
    await give_grant(client, patient, therapist)
    context = await browser.new_context(viewport=PHONE)
    try:
        page = await context.new_page()
        await sign_in(page, server.base_url, therapist.email)
        await page.goto(f"{server.base_url}/therapist/patients/{patient.id}")

        # The tall drawing is the one shown, taller than wide, its labels at 12 px or more.
        chart = page.get_by_role("img", name=re.compile("^Chart of mood check-ins"))
        assert await chart.count() == 1
        assert await chart.get_attribute("class") == "mood-chart mood-chart-narrow"
        box = await chart.bounding_box()
        assert box is not None
        assert box["height"] > 0.9 * box["width"]
        sizes = await chart.locator("text").evaluate_all(
            "texts => texts.map(t => parseFloat(getComputedStyle(t).fontSize)"
            " * t.ownerSVGElement.getScreenCTM().a)"
        )
        assert min(sizes) >= 12

        # The scores table is wider than the phone: a named region, reached with Tab, that
        # the arrow keys scroll, and the page says so.
        region = page.get_by_role("region", name="Scores against baseline")
        overflow = await region.evaluate("e => e.scrollWidth - e.clientWidth")
        assert overflow > 0
        assert await page.get_by_text("Scroll the table sideways").first.is_visible()
        await page.get_by_role("link", name="Your patients").focus()
        for _ in range(15):
            await page.keyboard.press("Tab")
            if await region.evaluate("e => e === document.activeElement"):
                break
        else:
            pytest.fail("the scores' scroll region was never reached with Tab")
        assert await region.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
        await page.keyboard.press("ArrowRight")
        await page.wait_for_function("e => e.scrollLeft > 0", arg=await region.element_handle())

        # The crisis links are targets at least 24 px tall.
        links = page.locator("ul.safety-resources a")
        assert await links.count() > 0
        for n in range(await links.count()):
            link = await links.nth(n).bounding_box()
            assert link is not None
            assert link["height"] >= 24

        # Forced colours (Windows High Contrast): the line is drawn in the system's text colour.
        line = page.locator("svg.mood-chart-narrow polyline.mood-line")
        authored = await line.evaluate("e => getComputedStyle(e).stroke")
        await page.emulate_media(forced_colors="active")
        forced, text = await line.evaluate(
            "e => [getComputedStyle(e).stroke, getComputedStyle(document.body).color]"
        )
        assert forced == text
        assert forced != authored
    finally:
        await context.close()


def test_screenshots_folder_is_ignored_by_git() -> None:
    ignored = Path(__file__).resolve().parents[1] / ".gitignore"
    assert re.search(r"^tests/artifacts/$", ignored.read_text(), re.MULTILINE)


async def test_the_browser_is_debians_chromium(browser: Browser) -> None:
    # The browser driven is the machine's own, never one Playwright downloaded: the binary at
    # CHROMIUM says it was built on Debian, and it is the version the tests talk to.
    process = await asyncio.create_subprocess_exec(
        str(chromium_path()),
        "--version",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await process.communicate()
    version = out.decode()
    assert "Debian" in version
    assert browser.version in version
