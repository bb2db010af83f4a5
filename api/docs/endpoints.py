"""``/docs`` and its assets. Swagger UI comes from the ``fastapi-offline`` package (pinned in
pyproject.toml), which ships its JavaScript and stylesheet; the page that starts it is ours.

FastAPI's own page loads Swagger UI from a CDN (a floating version, no integrity check: third-party
script on the API's own origin, and a blank page offline) and starts it with an inline script,
which no strict policy allows. Here every byte comes from this app: the page, Swagger UI, the
start-up script, and the spec it reads.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from html import escape
from pathlib import Path

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from api.errors import NotFound
from api.routing import api_router

ASSETS_PATH = "/docs/assets"
# Scripts, styles and connections (the spec; "Authorize" and "Try it out" calling the API) from
# this origin only; images also as data: URIs, which Swagger UI's stylesheet uses for its icons.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_SWAGGER = importlib.resources.files("fastapi_offline") / "static"
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}


def _asset(name: str, content: bytes) -> tuple[str, bytes, str]:
    # Named by a digest of their content, so a browser may keep them for good.
    digest = hashlib.sha256(content).hexdigest()[:12]
    return (
        f"{Path(name).stem}.{digest}{Path(name).suffix}",
        content,
        _MEDIA_TYPES[Path(name).suffix],
    )


ASSETS: dict[str, tuple[str, bytes, str]] = {
    name: _asset(name, content)
    for name, content in (
        ("swagger-ui-bundle.js", (_SWAGGER / "swagger-ui-bundle.js").read_bytes()),
        ("swagger-ui.css", (_SWAGGER / "swagger-ui.css").read_bytes()),
        ("favicon.png", (_SWAGGER / "favicon.png").read_bytes()),
        ("swagger-init.js", (Path(__file__).parent / "swagger-init.js").read_bytes()),
    )
}
_BY_SERVED_NAME = {served: (content, media) for served, content, media in ASSETS.values()}

router = api_router(include_in_schema=False)


def _url(request: Request, name: str) -> str:
    root = request.scope.get("root_path", "")
    return escape(f"{root}{ASSETS_PATH}/{ASSETS[name][0]}")


@router.get("/docs")
async def docs_page(request: Request) -> HTMLResponse:
    spec = escape(f"{request.scope.get('root_path', '')}{request.app.openapi_url}")
    title = escape(f"{request.app.title} - API docs")
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{_url(request, "swagger-ui.css")}">
<link rel="icon" type="image/png" href="{_url(request, "favicon.png")}">
</head>
<body>
<div id="swagger-ui" data-spec="{spec}"></div>
<script src="{_url(request, "swagger-ui-bundle.js")}"></script>
<script src="{_url(request, "swagger-init.js")}"></script>
</body>
</html>
"""
    return HTMLResponse(page, headers=PAGE_HEADERS)


@router.get(ASSETS_PATH + "/{name}")
async def docs_asset(name: str) -> Response:
    found = _BY_SERVED_NAME.get(name)
    if found is None:
        raise NotFound("No such asset of the docs page.")
    content, media_type = found
    return Response(
        content,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
