"""The chargers' upload endpoint against the running daemon: one-time, expiring tokens,
raw and multipart bodies, its own size limit enforced while the body streams in (and the
general limit still on every other route), safe file names, and downloads that are only
the charger's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from edge.config import SiteConfig
from edge.core.ids import ChargerId
from edge.daemon import EdgeDaemon

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def edge(
    config_factory: Callable[..., SiteConfig], clock: Clock
) -> AsyncIterator[EdgeDaemon]:
    config = config_factory(
        diagnostics={"max_upload_mb": 1, "min_free_mb": 0},
        chargers=[{"id": "CP-A"}, {"id": "CP-B"}],
    )
    async with EdgeDaemon(config, clock=clock) as daemon:
        for charger in ("CP-A", "CP-B"):
            await daemon.site.connected(ChargerId(charger), "ocpp1.6")
        yield daemon


@pytest.fixture
async def api(edge: EdgeDaemon) -> AsyncIterator[httpx.AsyncClient]:
    base = f"http://127.0.0.1:{edge.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        yield client


async def token_of(edge: EdgeDaemon, charger: str = "CP-A") -> tuple[int, str]:
    request, token = await edge.site.logs.create(ChargerId(charger), "DiagnosticsLog")
    return request.id, token


def stored_files(edge: EdgeDaemon) -> list[Path]:
    root = edge.config.storage.data_dir
    return sorted(p for p in root.rglob("*") if p.is_file() and "uploads" in p.parts)


async def test_a_raw_put_is_stored_once_and_downloaded(
    edge: EdgeDaemon, api: httpx.AsyncClient
) -> None:
    request_id, token = await token_of(edge)
    content = b"line one\nline two\n" * 1000
    put = await api.put(f"/ocpp-uploads/{token}/diag.log", content=content)
    assert put.status_code == 201, put.text
    assert put.json()["size"] == len(content)
    again = await api.put(f"/ocpp-uploads/{token}/diag.log", content=b"other")
    assert again.status_code == 410
    [path] = stored_files(edge)
    assert path.name == f"{request_id}-diag.log"
    assert path.read_bytes() == content
    download = await api.get(f"/api/chargers/CP-A/logs/{request_id}/file")
    assert download.content == content
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"
    # another charger's request is not there for it
    other = await api.get(f"/api/chargers/CP-B/logs/{request_id}/file")
    assert other.status_code == 404
    listed = await api.get("/api/chargers/CP-B/logs")
    assert listed.json() == []


async def test_a_multipart_post_keeps_only_the_file_under_a_safe_name(
    edge: EdgeDaemon, api: httpx.AsyncClient
) -> None:
    request_id, token = await token_of(edge)
    content = b"\x00binary\r\n--not-a-boundary\r\n" * 500
    posted = await api.post(
        f"/ocpp-uploads/{token}",
        data={"note": "from the charger"},
        files={"file": ("../../../etc/.evil.sh", content, "application/octet-stream")},
    )
    assert posted.status_code == 201, posted.text
    [path] = stored_files(edge)
    assert path.parent == edge.config.storage.data_dir / "uploads" / "CP-A"
    assert path.name == f"{request_id}-evil.sh"
    assert path.read_bytes() == content


async def test_unknown_expired_and_refused_tokens(
    edge: EdgeDaemon, api: httpx.AsyncClient, clock: Clock
) -> None:
    unknown = await api.put("/ocpp-uploads/not-a-token/x.log", content=b"x")
    assert unknown.status_code == 404
    too_long = await api.put(f"/ocpp-uploads/{'a' * 500}", content=b"x")
    assert too_long.status_code == 404
    _, token = await token_of(edge)
    clock.now += timedelta(seconds=edge.config.diagnostics.token_ttl)
    expired = await api.put(f"/ocpp-uploads/{token}/x.log", content=b"x")
    assert expired.status_code == 410
    assert stored_files(edge) == []
    metrics = (await api.get("/metrics")).text
    assert 'evpark_log_uploads_refused_total{reason="unknown_token"} 2.0' in metrics
    assert 'evpark_log_uploads_refused_total{reason="expired"} 1.0' in metrics


async def test_an_oversize_body_is_refused_and_leaves_no_file(
    edge: EdgeDaemon, api: httpx.AsyncClient
) -> None:
    _, token = await token_of(edge)
    big = b"x" * (2**20 + 1)
    declared = await api.put(f"/ocpp-uploads/{token}/big.log", content=big)
    assert declared.status_code == 413

    async def streamed() -> AsyncIterator[bytes]:  # chunked: no Content-Length
        for _ in range(20):
            yield b"y" * 65536

    cut = await api.put(f"/ocpp-uploads/{token}/big.log", content=streamed())
    assert cut.status_code == 413
    assert stored_files(edge) == []
    # nothing was received: the charger may try again with the same token
    retry = await api.put(f"/ocpp-uploads/{token}/small.log", content=b"fits")
    assert retry.status_code == 201
    # the general body limit still holds everywhere else
    other = await api.post(
        "/api/chargers/CP-A/data-transfer",
        json={"vendor_id": "x", "data": "z" * (edge.config.http.max_body + 1)},
    )
    assert other.status_code == 413


async def test_a_broken_multipart_body_is_a_400_and_leaves_no_file(
    edge: EdgeDaemon, api: httpx.AsyncClient
) -> None:
    _, token = await token_of(edge)
    truncated = b'--B\r\nContent-Disposition: form-data; name="f"; filename="a.log"\r\n\r\nhalf'
    answer = await api.post(
        f"/ocpp-uploads/{token}",
        content=truncated,
        headers={"content-type": "multipart/form-data; boundary=B"},
    )
    assert answer.status_code == 400
    assert stored_files(edge) == []


async def test_a_slow_upload_has_the_request_timeout_per_chunk_not_in_all(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(
        http={"request_timeout": 1.0}, diagnostics={"min_free_mb": 0}, chargers=[{"id": "CP-A"}]
    )
    async with (
        EdgeDaemon(config) as edge,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.http_port}", timeout=10) as api,
    ):
        _, steady_token = await token_of(edge)

        async def steady() -> AsyncIterator[bytes]:  # longer in all than request_timeout
            for _ in range(8):
                await asyncio.sleep(0.2)
                yield b"z" * 1000

        slow = await api.put(f"/ocpp-uploads/{steady_token}/slow.log", content=steady())
        assert slow.status_code == 201, slow.text
        assert slow.json()["size"] == 8000

        _, stalled_token = await token_of(edge)

        async def stalled() -> AsyncIterator[bytes]:
            yield b"z" * 1000
            await asyncio.sleep(2.5)
            yield b"z"

        with pytest.raises(httpx.HTTPError):
            await api.put(f"/ocpp-uploads/{stalled_token}/stalled.log", content=stalled())
        assert [p.name for p in stored_files(edge)] == ["1-slow.log"]


async def test_a_status_naming_another_chargers_request_changes_nothing(
    edge: EdgeDaemon, api: httpx.AsyncClient
) -> None:
    request_id, _ = await token_of(edge, "CP-A")
    await edge.site.log_status(ChargerId("CP-B"), "Uploaded", request_id, {"status": "Uploaded"})
    await edge.site.log_status(ChargerId("CP-A"), "Uploading", request_id, {"status": "Uploading"})
    [shown] = (await api.get("/api/chargers/CP-A/logs")).json()
    assert [s["status"] for s in shown["statuses"]] == ["Uploading"]


async def test_the_logs_list_pages_newest_first(edge: EdgeDaemon, api: httpx.AsyncClient) -> None:
    made = [(await token_of(edge))[0] for _ in range(3)]
    first = await api.get("/api/chargers/CP-A/logs", params={"limit": 2})
    assert [r["id"] for r in first.json()] == made[:0:-1]
    assert all("token" not in key for r in first.json() for key in r)
    following = first.headers["link"].split(";")[0].strip("<>")
    rest = await api.get(following)
    assert [r["id"] for r in rest.json()] == made[:1]
    assert "link" not in rest.headers
    unknown = await api.get("/api/chargers/NOPE/logs")
    assert unknown.status_code == 404
