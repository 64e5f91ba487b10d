"""The edge's ``/docs`` works on a site without internet."""

from __future__ import annotations

import httpx

from edge.daemon import EdgeDaemon
from tests.offline_docs import docs_served_locally


async def test_the_edge_serves_its_docs_itself(edge: EdgeDaemon) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.http_port}") as client:
        await docs_served_locally(client)
