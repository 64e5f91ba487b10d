"""Central at scale: events/s acknowledged and processed, end-to-end lag, storm drain, API
reads under load, CPU and memory per process, PostgreSQL rows and bytes per event, and an
exactly-once check (issue 17).

Runs central in scale mode as local processes (:class:`tests.harness.central_cluster.CentralCluster`:
fresh PostgreSQL databases, NATS and Redis namespaces of its own, the four consuming
services one process each, ``--replicas`` ingest replicas = gateway with sync) and drives
it with ``--sites`` light simulated sites speaking the real sync protocol with their own
keys (:mod:`bench.central_load`, the event mix of :mod:`bench.central_sites`):

1. steady: ``--rate`` events/s over all sites for ``--seconds`` (0: as fast as central
   acknowledges full batches), while a reader asks ``GET /parking/status`` and
   ``GET /charging/status/{vehicle}``; then until every consumer has applied everything;
2. storm: every site comes back at once with ``--backlog`` events; until all applied.

Lag and "applied" are read from NATS (:mod:`bench.central_lag`); the exactly-once check
and the storage figures from the databases (:mod:`bench.central_checks`).

    python -m bench.central_scale                 # 500 sites, 20,000 events/s, ~3 min
    python -m bench.central_scale --smoke         # a few sites, a few seconds (CI)
    python -m bench.central_scale --rate 0 --sites 50 --json
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.central_checks import checks_json, exactly_once, storage, storage_per_event
from bench.central_lag import BusWatch, Sample, applied_events, batch_lags, weighted_percentile
from bench.central_load import Posting, SitePoster, steady, storm
from bench.central_probes import Probes
from bench.central_reads import VEHICLE, Reads, ms, read_api
from bench.central_sites import SESSION_SCRIPT, SiteEvents, check_events
from tests.harness.central_cluster import CHECKOUT, CentralCluster
from tests.harness.shared_services import NATS_URL

BENCH_ENV = {
    # a bench measures throughput: no key's bucket is the limit
    "EVPARK_CENTRAL_RATE_LIMIT__ENABLED": "false",
}
LOG_PROBLEMS = ("bus.event.dead_lettered", ".event.invalid", "bus.event.unreadable")
SMOKE = {
    "sites": 4,
    "chargers": 5,
    "rate": 300.0,
    "seconds": 3.0,
    "backlog": 60,
    "interval": 0.5,
    "api_rate": 5.0,
    "drain_timeout": 45.0,
}


async def drained(watch: BusWatch, began: float, events: int, within: float) -> dict[str, Any]:
    """Wait until every consumer has applied everything: events/s processed since
    ``began``, or how far they got in ``within`` s."""
    first = _sample_at(watch.samples, began)
    done = await watch.until_applied(within)
    if done is not None:
        seconds = done.answered - began
        return {"drained": True, "seconds": round(seconds, 2),
                "processed_per_s": round(events / seconds)}  # fmt: skip
    last = watch.samples[-1]
    # NATS counts messages, and a message carries the events of one upload of a topic:
    # how many events they hold is not known here, so no rate is given
    applied = applied_events(first, last) if first is not None else 0
    seconds = last.answered - began
    return {
        "drained": False,
        "seconds": round(seconds, 2),
        "processed_per_s": None,
        "applied_messages": applied,
        "still_waiting_messages": sum(s.waiting for s in last.topics.values()),
    }


def _sample_at(samples: Sequence[Sample], moment: float) -> Sample | None:
    return next((s for s in samples if s.asked >= moment), samples[-1] if samples else None)


async def phase_steady(
    args: argparse.Namespace,
    posters: Sequence[SitePoster],
    clients: Sequence[httpx.AsyncClient],
    watch: BusWatch,
    driver_key: str,
    urls: Sequence[str],
) -> dict[str, Any]:
    posting, reads = Posting(), Reads()
    began = time.monotonic()
    watch.samples.append(await watch.sample())
    stop_reading = asyncio.Event()
    sites = [p.events.site_id for p in posters]
    async with asyncio.TaskGroup() as tasks:
        sampler = tasks.create_task(watch.run())
        tasks.create_task(read_api(urls, driver_key, sites, args.api_rate, reads, stop_reading))
        await steady(posters, clients, rate=args.rate, seconds=args.seconds,
                     interval=args.interval, batch=args.batch, posting=posting)  # fmt: skip
        stop_reading.set()
        sampler.cancel()
    ended = time.monotonic()
    events = sum(b.events for b in posting.batches)
    done = await drained(watch, began, events, args.drain_timeout)
    lags = batch_lags(posting.batches, watch.samples)
    latencies = [(b.acked - b.began, 1) for b in posting.batches]
    return {
        "offered_per_s": round(args.rate) if args.rate > 0 else None,
        "events": events,
        "batches": len(posting.batches),
        "ingest_seconds": round(ended - began, 2),
        "ingest_per_s": round(events / (ended - began)),
        "given_up_in_flight": sum(len(p.pending) for p in posters),
        "processed": done,
        "lag_p50_s": _round(weighted_percentile(lags, 0.5)),
        "lag_p99_s": _round(weighted_percentile(lags, 0.99)),
        "lag_batches_measured": len(lags),
        "batch_p50_ms": ms(weighted_percentile(latencies, 0.5)),
        "batch_p99_ms": ms(weighted_percentile(latencies, 0.99)),
        "retries": posting.retries,
        "api": reads.summary(),
    }


async def phase_storm(
    args: argparse.Namespace,
    posters: Sequence[SitePoster],
    clients: Sequence[httpx.AsyncClient],
    watch: BusWatch,
) -> dict[str, Any]:
    posting = Posting()
    events = sum(len(p.pending) for p in posters) + args.backlog * len(posters)
    began = time.monotonic()
    watch.samples.append(await watch.sample())
    await storm(posters, clients, backlog=args.backlog, batch=args.batch, posting=posting,
                within=args.storm_timeout)  # fmt: skip
    acked_at = time.monotonic()
    acked = sum(b.events for b in posting.batches)
    done = await drained(watch, began, acked, args.drain_timeout)
    latencies = [(b.acked - b.began, 1) for b in posting.batches]
    return {
        "events": events,
        "not_acknowledged": sum(len(p.pending) for p in posters),
        "ingest_seconds": round(acked_at - began, 2),
        "ingest_per_s": round(acked / (acked_at - began)),
        "drain": done,
        "batch_p99_ms": ms(weighted_percentile(latencies, 0.99)),
        "retries": posting.retries,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    # the mix is checked against the contract before any load: invalid events would be
    # dropped by the consumers and make every figure a lie
    sample = SiteEvents("check", chargers=args.chargers)
    check_events(sample.take(args.chargers * (len(SESSION_SCRIPT) + 70), datetime.now(UTC)))
    site_ids = [f"bench-{i}" for i in range(args.sites)]
    async with AsyncExitStack() as stack:
        cluster = await stack.enter_async_context(
            CentralCluster(
                workdir, ingest_replicas=args.replicas, env=BENCH_ENV, source=args.central_src
            )
        )
        keys = await cluster.keys("site", list(site_ids))
        (driver_key,) = await cluster.keys("driver", [None], user="bench-driver",
                                           vehicles=(VEHICLE,))  # fmt: skip
        posters = [
            SitePoster(SiteEvents(site, chargers=args.chargers), key, i % args.replicas)
            for i, (site, key) in enumerate(zip(site_ids, keys, strict=True))
        ]
        limits = httpx.Limits(max_connections=args.sites + 4, max_keepalive_connections=args.sites)
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=120, limits=limits)
            )
            for url in cluster.ingest_urls
        ]
        watch = await stack.enter_async_context(BusWatch(NATS_URL, cluster.bus_namespace))
        probes = Probes(cluster)
        stored_before = await storage(cluster)
        await probes.begin()
        report: dict[str, Any] = {"steady": await phase_steady(args, posters, clients, watch,
                                                               driver_key, cluster.ingest_urls)}  # fmt: skip
        if args.backlog > 0:
            report["storm"] = await phase_storm(args, posters, clients, watch)
        events = sum(p.events.made for p in posters)
        report["processes"] = await probes.end(events)
        await asyncio.sleep(1.5)  # PostgreSQL publishes a backend's counters about every second
        report["postgres"] = storage_per_event(stored_before, await storage(cluster), events)
        posted = not any(p.pending for p in posters)
        if posted and watch.samples[-1].applied():
            problems = {n: sum(cluster.count_in_logs(n).values()) for n in LOG_PROBLEMS}
            report["exactly_once"] = checks_json(
                await exactly_once(cluster, [p.events for p in posters], problems)
            )
        else:
            why = "not drained in time" if posted else "not every event acknowledged in time"
            report["exactly_once"] = {"ok": None, "checks": [], "why": why}
        report["events"] = events
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true",
                        help="a few sites, a few seconds per phase (CI): " + str(SMOKE))  # fmt: skip
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--chargers", type=int, default=20, help="chargers per site")
    parser.add_argument("--rate", type=float, default=20000.0,
                        help="steady events/s over all sites (0: as fast as acknowledged)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=20.0, help="steady phase length")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="a site posts what it has this often (the edge's batch_interval)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=500, help="most events per POST")
    parser.add_argument("--backlog", type=int, default=100,
                        help="events per site in the reconnect storm (0: no storm)")  # fmt: skip
    parser.add_argument("--replicas", type=int, default=2, help="ingest replicas")
    parser.add_argument("--api-rate", type=float, default=20.0, help="API reads/s in steady")
    parser.add_argument("--storm-timeout", type=float, default=45.0,
                        help="longest the storm's posting may take, s")  # fmt: skip
    parser.add_argument("--drain-timeout", type=float, default=40.0,
                        help="longest wait for the consumers after each phase, s")  # fmt: skip
    parser.add_argument("--central-src", type=Path, default=CHECKOUT,
                        help="the source tree whose central runs (e.g. an older commit's "
                        "`git archive` output, to compare)")  # fmt: skip
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the processes' logs in this directory")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    if args.smoke:
        for name, value in SMOKE.items():
            setattr(args, name, value)
    if args.sites < 1 or args.replicas < 1 or not 1 <= args.batch <= 5000:
        parser.error("--sites and --replicas at least 1, --batch 1..5000")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = {k: v for k, v in vars(args).items() if k not in ("json", "keep", "central_src")}
    config["central_src"] = str(args.central_src)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return {"config": config, **asyncio.run(bench(args, args.keep))}
    with tempfile.TemporaryDirectory(prefix="evpark-scale-") as tmp:
        return {"config": config, **asyncio.run(bench(args, Path(tmp)))}


def text(report: Mapping[str, Any]) -> str:
    """The report for a person."""
    s, lines = report["steady"], []
    p = s["processed"]
    lines += [
        f"steady   {s['events']} events from {report['config']['sites']} sites "
        f"(offered {s['offered_per_s'] or 'as fast as acknowledged'}/s): "
        f"acknowledged {s['ingest_per_s']}/s (batch p50 {s['batch_p50_ms']} ms, "
        f"p99 {s['batch_p99_ms']} ms), processed {p['processed_per_s']}/s"
        + ("" if p["drained"] else f" (NOT drained after {p['seconds']} s)"),
        f"         lag site POST -> every consumer applied: p50 {s['lag_p50_s']} s, "
        f"p99 {s['lag_p99_s']} s ({s['lag_batches_measured']}/{s['batches']} batches)",
    ]
    for route, api in s["api"].items():
        lines.append(f"         {route}: p50 {api['p50_ms']} ms, p99 {api['p99_ms']} ms "
                     f"({api['requests']} reads, {api['errors']} errors, {api['unanswered']} unanswered)")  # fmt: skip
    if s["retries"]:
        lines.append(f"         retried: {s['retries']}")
    if s["given_up_in_flight"]:
        lines.append(f"         {s['given_up_in_flight']} events in flight at the end: sent again")
    if "storm" in report:
        st = report["storm"]
        d = st["drain"]
        lines.append(
            f"storm    {st['events']} events: acknowledged in {st['ingest_seconds']} s "
            f"({st['ingest_per_s']}/s"
            + (f", {st['not_acknowledged']} NOT acknowledged" if st["not_acknowledged"] else "")
            + f"), applied {d['seconds']} s after its start ({d['processed_per_s']}/s)"
            + ("" if d["drained"] else " NOT drained")
        )
    lines.append("process                        cpu s  ms/event  peak RSS MB")
    for name, figures in report["processes"].items():
        lines.append(f"  {name:28s} {figures['cpu_s']:6}  {figures['cpu_ms_per_event']:8}  "
                     f"{figures['peak_rss_mb']}")  # fmt: skip
    pg = report["postgres"]
    lines.append(
        f"postgres {pg['rows_added_per_event']} rows added, "
        f"{pg['rows_updated_per_event']} updated, {pg['bytes_per_event']} bytes per event"
    )
    once = report["exactly_once"]
    verdict = {True: "holds", False: "FAILS", None: "not checked"}[once["ok"]]
    lines.append(f"exactly-once: {verdict}" + (f" ({once['why']})" if "why" in once else ""))
    lines += [
        f"  {'ok ' if c['ok'] else 'BAD'} {c['what']}: {c['got']} (expected {c['expected']})"
        for c in once["checks"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    report = run(args)
    if args.json:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
    else:
        sys.stdout.write(text(report))
    if report["exactly_once"]["ok"] is False:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
