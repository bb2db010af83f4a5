"""`/docs` needs nothing from outside: the page, Swagger UI and its start-up script all come from
the app, under a strict Content-Security-Policy, and "Authorize" still signs in.

The browser test drives Debian's Chromium against a real server on loopback; any request to
another origin is refused by the test and fails it.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import ConsoleMessage, Route

from api.settings import Settings
from tests.support.browser import chromium
from tests.support.people import PASSWORD, Person
from tests.support.server import ServerProcess, running_server, service_environment

STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SWAGGER = importlib.resources.files("fastapi_offline") / "static"


class References(HTMLParser):
    """Every URL a page loads (src and href), and the text of every script element."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href"} and value is not None:
                self.urls.append(value)
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


async def test_the_docs_page_loads_only_same_origin_assets_under_a_strict_policy(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == STRICT_CSP
    assert "unsafe" not in page.headers["content-security-policy"]
    found = References()
    found.feed(page.text)
    assert found.scripts == ["", ""], "no inline script: the policy would refuse it"
    assert len(found.urls) == 4
    for url in found.urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), url
        assert url.startswith("/docs/assets/"), url
    assert 'data-spec="/openapi.json"' in page.text

    served = {}
    for url in found.urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert "immutable" in asset.headers["cache-control"]
        served[url.rsplit("/", 1)[-1].split(".")[0]] = asset
    # The bytes are the pinned package's own, under names that change with their content.
    assert served["swagger-ui-bundle"].content == (SWAGGER / "swagger-ui-bundle.js").read_bytes()
    assert served["swagger-ui"].content == (SWAGGER / "swagger-ui.css").read_bytes()
    assert served["swagger-ui-bundle"].headers["content-type"].startswith("text/javascript")
    assert served["swagger-ui"].headers["content-type"].startswith("text/css")
    assert "SwaggerUIBundle(" in served["swagger-init"].text
    missing = await client.get("/docs/assets/redoc.standalone.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_fastapis_cdn_pages_are_gone(client: httpx.AsyncClient) -> None:
    for path in ("/redoc", "/docs/oauth2-redirect"):
        assert (await client.get(path)).status_code == 404, path


@pytest.fixture(scope="module")
async def server(
    app: FastAPI, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServerProcess]:
    # `app` first: it has made the keys in the data folder that the server then reads.
    env = service_environment(settings.database_url, settings.data_dir)
    log = tmp_path_factory.mktemp("docs-server") / "server.log"
    async with running_server(env, log) as process:
        yield process


async def test_swagger_ui_renders_offline_and_authorize_signs_in(
    server: ServerProcess, patient: Person
) -> None:
    elsewhere: list[str] = []
    csp_violations: list[str] = []

    async def same_origin_only(route: Route) -> None:
        if route.request.url.startswith(server.base_url + "/"):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            csp_violations.append(message.text)

    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        await context.route("**/*", same_origin_only)
        page = await context.new_page()
        page.on("console", console)
        await page.goto(f"{server.base_url}/docs")
        await (
            page.locator(".information-container .title")
            .filter(has_text="KAP integration journal")
            .wait_for()
        )
        await page.locator("#operations-accounts-get_me").wait_for()

        # Authorize: the password flow, through the modal, as an integrator would.
        await page.locator(".auth-wrapper .btn.authorize").click()
        await page.locator("#oauth_username").fill(patient.email)
        await page.locator("#oauth_password").fill(PASSWORD)
        await page.locator(".auth-btn-wrapper .btn.modal-btn.auth.authorize").first.click()
        await (
            page.locator(".auth-btn-wrapper .btn.modal-btn.auth")
            .filter(has_text="Logout")
            .first.wait_for()
        )
        await page.locator(".auth-btn-wrapper .btn-done").first.click()

        # The token is used: GET /v1/me answers 200 with the patient's own account.
        operation = page.locator("#operations-accounts-get_me")
        await operation.locator(".opblock-summary").click()
        await operation.locator(".try-out__btn").click()
        await operation.locator(".execute").click()
        status = operation.locator(".live-responses-table .response .response-col_status")
        await status.first.wait_for()
        assert (await status.first.inner_text()).strip() == "200"
        body = await operation.locator(".live-responses-table .microlight").first.inner_text()
        assert patient.email in body
        await context.close()

    assert elsewhere == []
    assert csp_violations == []
