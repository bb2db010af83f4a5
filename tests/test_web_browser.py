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
    artifact_path,
    chromium,
    chromium_path,
    copy_to,
    demo_journal,
    person,
    sign_in,
    write,
)
from tests.support.people import register
from tests.support.server import ServerProcess, running_server, service_environment
from tests.support.sharing import give_grant

# `UPDATE_DOCS_SCREENSHOT=1 pytest tests/test_web_browser.py` refreshes the README's picture.
DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "therapist-patient-page.png"


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
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
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

    chart = page.locator("svg.mood-chart")
    assert await chart.get_attribute("role") == "img"
    assert await chart.locator("circle.mood-point").count() == demo.shared_checkins
    assert await chart.locator("line.dosing-marker").count() == demo.sessions
    assert "Dosing sessions" in (await chart.locator("desc").text_content() or "")

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
    await page.set_viewport_size({"width": 820, "height": 1180})
    tablet = artifact_path("therapist-patient-page-tablet.png")
    await page.screenshot(path=str(tablet), full_page=True)
    assert laptop.stat().st_size > 10_000
    assert tablet.stat().st_size > 10_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        copy_to(top, DOCS_SCREENSHOT)
    with capsys.disabled():
        print(f"\nscreenshots of the patient page: {laptop.parent}")

    await page.get_by_role("link", name="Older entries").click()
    await page.get_by_role("heading", name="Journal, older entries").wait_for()
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
        await stale.get_by_text("Your session has ended. Please sign in again.").wait_for()
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
    page = tab.page
    await sign_in(page, server.base_url, therapist.email)
    await page.get_by_role("heading", name="Your patients").wait_for()
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
    await page.get_by_text("Your session has ended. Please sign in again.").wait_for()


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
