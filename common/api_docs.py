"""``/docs`` served by the process itself: Swagger UI 5 (it reads the OpenAPI 3.1 that
FastAPI writes) from the files the ``fastapi-offline`` package ships, so the page works on
a site without internet (FastAPI's default loads it from a CDN). The page has no inline script: the one that starts Swagger UI is an asset too, so
a strict Content-Security-Policy allows it."""

from __future__ import annotations

import json
from importlib import resources
from typing import Final

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

ASSETS: Final = "/docs-assets"
_FILES: Final = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
_CACHE: Final = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}


def is_docs_path(path: str) -> bool:
    """The page and its assets: public wherever the API needs a key."""
    return path == "/docs" or path.startswith(ASSETS + "/")


def docs_router(openapi_url: str, title: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    shipped = resources.files("fastapi_offline") / "static"  # only its files are used
    assets = {name: (shipped / name).read_bytes() for name in _FILES}
    start = (
        f"window.ui = SwaggerUIBundle({{url: {json.dumps(openapi_url)}, dom_id: '#swagger-ui', "
        "deepLinking: true, presets: [SwaggerUIBundle.presets.apis]});\n"
    ).encode()
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="icon" href="{ASSETS}/favicon.png"></head>
<body><div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="{ASSETS}/start.js"></script></body></html>
"""

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"X-Content-Type-Options": "nosniff"})

    @router.get(ASSETS + "/{name}")
    async def asset(name: str) -> Response:
        if name == "start.js":
            return Response(start, media_type="text/javascript", headers=_CACHE)
        if name not in assets:
            raise HTTPException(404, "no such asset")
        return Response(assets[name], media_type=_FILES[name], headers=_CACHE)

    return router
