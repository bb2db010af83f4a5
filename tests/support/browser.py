"""The machine's own Chromium, driven by Playwright, and the web view's helpers for tests.

Playwright never downloads a browser here (``playwright install`` is never run): it launches
Debian's ``chromium`` at ``/usr/bin/chromium`` (``TEST_CHROMIUM`` to point elsewhere). When it is
missing the test fails and says how to install it: browser tests are never skipped in silence.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from tests.support.cluster import ROOT
from tests.support.people import PASSWORD, Person, register

CHROMIUM = Path(os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots of each run land here (git-ignored).
ARTIFACTS = ROOT / "tests" / "artifacts"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
# The two screens every page is checked on: a laptop, and a phone (an iPhone 12 to 15's CSS size).
LAPTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
# axe-core, the version pinned in tests/axe/package-lock.json (`make axe` installs it).
AXE = ROOT / "tests" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 A and AA, as axe tags its rules (2.0's rules are part of 2.1).
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def chromium_path() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's package "
            "(`apt-get install -y chromium`, as .ci/run does) or set TEST_CHROMIUM. "
            "Never `playwright install`."
        )
    return CHROMIUM


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def sign_in(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Through the form, as a person would: type, then press the button."""
    await page.goto(f"{base_url}/therapist/sign-in")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()


async def axe_context(browser: Browser, viewport: ViewportSize) -> BrowserContext:
    """A fresh profile whose pages get axe-core before their own content. Playwright adds it
    through the DevTools protocol, which a page's CSP does not govern: the pages keep their
    strict policy (no script of any kind), and only this test's browser has axe."""
    if not AXE.is_file():
        pytest.fail(f"axe-core not found at {AXE}: run `make axe` (npm ci in tests/axe).")
    context = await browser.new_context(viewport=viewport)
    await context.add_init_script(path=AXE)
    return context


async def axe_violations(page: Page) -> list[str]:
    """What axe finds against WCAG 2.1 AA on the page as it is now, one line per violation
    and element (empty when it finds nothing)."""
    violations: list[dict[str, Any]] = await page.evaluate(
        """async tags => (await axe.run(document, {
            runOnly: {type: "tag", values: tags}, resultTypes: ["violations"],
        })).violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map(n => n.target.join(" "))}))""",
        WCAG_21_AA,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {target}"
        for v in violations
        for target in v["targets"]
    ]


def contrast(foreground: str, background: str) -> float:
    """The WCAG contrast ratio of two computed colours ("rgb(r, g, b)" or "rgba(...)"); a
    translucent foreground is first laid over the background, as it is drawn."""

    def channels(css: str) -> tuple[float, ...]:
        return tuple(float(n) for n in re.findall(r"[\d.]+", css))

    fg, bg = channels(foreground), channels(background)
    alpha = fg[3] if len(fg) == 4 else 1.0
    drawn = [alpha * f + (1 - alpha) * b for f, b in zip(fg[:3], bg[:3], strict=True)]

    def luminance(rgb: list[float] | tuple[float, ...]) -> float:
        linear = [
            c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
            for c in (v / 255 for v in rgb)
        ]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(drawn), luminance(bg[:3])), reverse=True)
    return (high + 0.05) / (low + 0.05)


def artifact_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def copy_to(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


# --- people and journals made through the API ---------------------------------------------------


async def person(client: httpx.AsyncClient, role: str, display_name: str) -> Person:
    """An account with a name worth showing on a page."""
    return await register(client, role, display_name)


async def write(
    client: httpx.AsyncClient, patient: Person, resource: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(f"/v1/{resource}", json=body, headers=patient.headers)
    assert response.status_code == 201, response.text
    entry: dict[str, Any] = response.json()
    return entry


def ago(now: datetime, days: float, hour: int | None = None) -> str:
    at = now - timedelta(days=days)
    if hour is not None:
        at = at.replace(hour=hour, minute=(7 * hour) % 60, second=0, microsecond=0)
    return min(at, now).isoformat()


@dataclass(frozen=True)
class DemoJournal:
    """What ``demo_journal`` wrote: the counts a page of it must show."""

    shared_checkins: int
    sessions: int
    private_text: str
    checkins: list[tuple[datetime, int]]  # the shared check-ins: (recorded_at, mood)
    session_times: list[datetime]


async def demo_journal(client: httpx.AsyncClient, patient: Person) -> DemoJournal:
    """Four weeks of a patient's KAP course, for the screenshot: three dosing sessions, a mood
    that lifts after them, intentions, reflections, and questionnaires with a safety flag."""
    now = datetime.now(UTC)
    sessions = []
    for days, dose in ((19, 100), (12, 125), (5, 125)):
        sessions.append(
            await write(
                client,
                patient,
                "sessions",
                started_at=ago(now, days, hour=10),
                route="sublingual",
                dose_mg=dose,
                setting="clinic",
                notes="Music, eyeshade; my partner drove me home.",
            )
        )
    await write(
        client,
        patient,
        "intentions",
        text="Be gentler with myself when I make mistakes at work.",
        set_at=ago(now, 21, hour=18),
        status="revisited",
        session_id=sessions[0]["id"],
    )
    await write(
        client,
        patient,
        "intentions",
        text="Call my sister, and say what I have been avoiding.",
        set_at=ago(now, 13, hour=20),
        status="active",
        session_id=sessions[1]["id"],
    )
    # Mood: low and flat before the first session, lifting after each, a dip between.
    moods = [3, 3, 2, 4, 3, 3, 2, 5, 5, 4, 3, 4, 5, 4, 6, 6, 5, 4, 5, 6, 5, 7, 6, 7, 6, 7]
    checkins: list[tuple[datetime, int]] = []
    for index, mood in enumerate(moods):
        days = 25 - index
        checkin = await write(
            client,
            patient,
            "checkins",
            recorded_at=ago(now, days, hour=9 if index % 3 else 20),
            mood=mood,
            anxiety=max(0, 8 - mood),
            energy=min(10, mood + 1),
            sleep_hours=6.0 + (mood % 3) * 0.5,
            note="Slept badly, heavy morning." if mood <= 3 else None,
        )
        checkins.append((datetime.fromisoformat(checkin["recorded_at"]), mood))
    await write(
        client,
        patient,
        "reflections",
        written_at=ago(now, 18, hour=19),
        session_id=sessions[0]["id"],
        text="A wide open feeling, then tiredness. I saw myself at nine years old and felt "
        "sorry for him, not ashamed.",
        prompts=[{"prompt": "What surprised you?", "answer": "How calm the middle part was."}],
        emotions=["calm", "grief", "tender"],
    )
    await write(
        client,
        patient,
        "reflections",
        written_at=ago(now, 4, hour=21),
        session_id=sessions[2]["id"],
        text="Harder this time. Old anger about my father came up and did not resolve. "
        "I wrote it down instead of drinking.",
        prompts=[
            {"prompt": "What do you want to bring to your next session?", "answer": "The anger."}
        ],
        emotions=["anger", "relief"],
    )
    private_text = "PRIVATE-never-for-the-therapist-7c1d"
    await write(
        client,
        patient,
        "reflections",
        written_at=ago(now, 3, hour=22),
        text=private_text,
        private=True,
    )
    await write(client, patient, "checkins", mood=1, note=private_text, private=True)
    # A baseline before the first session and a follow-up: PHQ-9 item 9 above 0 both times.
    for days_ago, phq9, gad7 in (
        (22, [3, 2, 2, 2, 2, 2, 2, 2, 1], [3, 2, 2, 2, 2, 2, 2]),
        (2, [1, 1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 1]),
    ):
        for instrument, answers in (("phq9", phq9), ("gad7", gad7)):
            await write(
                client,
                patient,
                "assessments",
                instrument=instrument,
                answers=answers,
                completed_at=ago(now, days_ago, hour=8),
            )
    last = await write(client, patient, "checkins", mood=7, anxiety=2, energy=6, sleep_hours=7.5)
    checkins.append((datetime.fromisoformat(last["recorded_at"]), 7))
    return DemoJournal(
        shared_checkins=len(checkins),
        sessions=len(sessions),
        private_text=private_text,
        checkins=checkins,
        session_times=[datetime.fromisoformat(s["started_at"]) for s in sessions],
    )


# --- the web view without a browser -------------------------------------------------------------


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found is not None, "no CSRF field in the page"
    return found.group(1)


async def web_sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    """Sign in through the form (a fresh form, its CSRF cookie kept by the client)."""
    form = await client.get("/therapist/sign-in")
    assert form.status_code == 200, form.text
    return await client.post(
        "/therapist/sign-in",
        data={"csrf_token": csrf_of(form.text), "email": email, "password": password},
    )
