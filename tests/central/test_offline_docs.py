"""Central's ``/docs`` works without the internet, through the gateway, without a key."""

from __future__ import annotations

from tests.central.conftest import Central
from tests.offline_docs import docs_served_locally


async def test_central_serves_its_docs_itself_without_a_key(central: Central) -> None:
    await docs_served_locally(central.client)
