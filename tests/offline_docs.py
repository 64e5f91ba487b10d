"""Checking that a process serves ``/docs`` itself, for the tests of both tiers."""

from __future__ import annotations

import re

import httpx

_REFERENCES = re.compile(r'(?:src|href)="([^"]+)"')


async def docs_served_locally(client: httpx.AsyncClient) -> None:
    """The page names only assets the process serves itself; each is there; no key or
    login is asked for."""
    page = await client.get("/docs")
    assert page.status_code == 200, page.text[:200]
    references = _REFERENCES.findall(page.text)
    assert references, page.text
    assert all(r.startswith("/docs-assets/") for r in references), references
    for reference in [*references, "/docs-assets/start.js"]:
        asset = await client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference
    assert "SwaggerUIBundle" in (await client.get("/docs-assets/swagger-ui-bundle.js")).text
    start = (await client.get("/docs-assets/start.js")).text
    assert '"/openapi.json"' in start  # the process's own API document
    assert (await client.get("/docs-assets/nothing.js")).status_code == 404
