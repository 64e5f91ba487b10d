"""The figures of the OCPP load benchmark (``bench.ocpp_load``): one load run's figures from
what its load processes measured and what was sampled of the target meanwhile, several
rounds' figures combined, and the report as text.

Latencies are CALL -> CALLRESULT as the load processes saw them; CPU is from the
target's ``/proc`` samples inside the measured window; a note says when the load
generator, not the target, was the limit.
"""

from __future__ import annotations

import math
import statistics
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

from bench.load_worker import ChargerSpec, Mode, WorkerResult
from bench.ocpp_targets import Target
from tests.harness.processes import ProcessProbe


@dataclass
class Figures:
    target: str
    chargers: int
    connected: int
    duration_s: float
    calls: int
    rate: float  # answered CALLs per second
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    setup_failed: int
    call_errors: int
    protocol_errors: int
    timeouts: int
    disconnects: int
    late_ticks: int
    target_cpu_pct: float | None  # of one core, during the window
    loadgen_cpu_pct: float | None  # all load-generator processes, of one core
    peak_rss_mb: float | None  # VmHWM at the end of the run
    sampled_rss_max_mb: float | None  # max of VmRSS samples during the run
    server_calls: dict[str, int]
    error_samples: list[str]
    notes: list[str]

    @property
    def errors(self) -> int:
        return (
            self.setup_failed
            + self.call_errors
            + self.protocol_errors
            + self.timeouts
            + self.disconnects
        )


def _percentile(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _cpu_in_window(
    samples: list[tuple[float, float | None, float | None]], t_start: float, t_end: float
) -> float | None:
    inside = [(t, cpu) for t, cpu, _ in samples if cpu is not None and t_start <= t <= t_end]
    if len(inside) < 2 or inside[-1][0] - inside[0][0] <= 0:
        return None
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return 100.0 * (c1 - c0) / (t1 - t0)


# counts that WorkerResult and Figures both carry, added up over workers or rounds
_COUNTS: Final = (
    "setup_failed",
    "call_errors",
    "protocol_errors",
    "timeouts",
    "disconnects",
    "late_ticks",
)


def _summed_counts(parts: Sequence[WorkerResult | Figures]) -> dict[str, Any]:
    return {name: sum(getattr(part, name) for part in parts) for name in _COUNTS}


def figures_of(
    target: Target,
    chargers: list[ChargerSpec],
    results: list[WorkerResult],
    samples: list[tuple[float, float | None, float | None]],
    mode: Mode,
    duration: float,
    t_start: float,
    t_end: float,
    probe: ProcessProbe | None,
) -> Figures:
    """One run's figures: its load processes' results added up, the target's CPU over the
    measured window (``t_start`` to ``t_end``) from ``samples``, its memory from ``probe``."""
    latencies = array("d")
    server_calls: Counter[str] = Counter()
    errors: list[str] = []
    for r in results:
        latencies.frombytes(r.latencies_ms)
        server_calls.update(r.server_calls)
        errors += r.error_samples
    ordered = sorted(latencies)
    calls = sum(r.calls for r in results)
    rss_samples = [rss for _, _, rss in samples if rss is not None]
    target_cpu = _cpu_in_window(samples, t_start, t_end)
    workers = max(1, len(results))
    loadgen_cpu = 100.0 * sum(r.cpu_seconds for r in results) / duration
    notes = target.notes  # the same list: the stop of the target adds to it later
    if target_cpu is not None and target_cpu < 90.0 and loadgen_cpu / workers > 90.0:
        notes.append(
            f"the load generator was busier ({loadgen_cpu:.0f}% over {workers} process(es)) than "
            f"the {target.name} ({target_cpu:.0f}%): this rate is a lower bound of what the "
            f"{target.name} can do"
        )
    elif (
        mode == "closed"
        and target_cpu is not None
        and max(target_cpu, loadgen_cpu / workers) < 75.0
    ):
        notes.append(
            f"in a closed loop neither the {target.name} ({target_cpu:.0f}%) nor the load "
            f"generator ({loadgen_cpu / workers:.0f}% per process) used a full core: something "
            f"else limited this rate (other work on the machine, or waiting on I/O)"
        )
    return Figures(
        target=target.name,
        chargers=len(chargers),
        connected=sum(r.connected for r in results),
        duration_s=duration,
        calls=calls,
        rate=calls / duration,
        p50_ms=_percentile(ordered, 0.50),
        p99_ms=_percentile(ordered, 0.99),
        max_ms=ordered[-1] if ordered else None,
        **_summed_counts(results),
        target_cpu_pct=target_cpu,
        loadgen_cpu_pct=loadgen_cpu,
        peak_rss_mb=probe.peak_rss_mb() if probe else None,
        sampled_rss_max_mb=max(rss_samples) if rss_samples else None,
        server_calls=dict(server_calls),
        error_samples=errors[:20],
        notes=notes,
    )


def combine(runs: list[Figures]) -> Figures:
    """One target's figures over several rounds: rate over all of them, the worst p99."""
    calls = sum(f.calls for f in runs)
    duration = sum(f.duration_s for f in runs)
    cpus = [f.target_cpu_pct for f in runs if f.target_cpu_pct is not None]
    loadgen = [f.loadgen_cpu_pct for f in runs if f.loadgen_cpu_pct is not None]
    server_calls: Counter[str] = Counter()
    for f in runs:
        server_calls.update(f.server_calls)

    def worst(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return max(known) if known else None

    return replace(
        runs[0],
        connected=min(f.connected for f in runs),
        duration_s=duration,
        calls=calls,
        rate=calls / duration if duration else 0.0,
        p50_ms=worst([f.p50_ms for f in runs]),
        p99_ms=worst([f.p99_ms for f in runs]),
        max_ms=worst([f.max_ms for f in runs]),
        **_summed_counts(runs),
        target_cpu_pct=statistics.fmean(cpus) if cpus else None,
        loadgen_cpu_pct=statistics.fmean(loadgen) if loadgen else None,
        peak_rss_mb=worst([f.peak_rss_mb for f in runs]),
        sampled_rss_max_mb=worst([f.sampled_rss_max_mb for f in runs]),
        server_calls=dict(server_calls),
        error_samples=[e for f in runs for e in f.error_samples][:20],
    )


def figures_dict(f: Figures) -> dict[str, Any]:
    out = asdict(f)
    out["errors"] = f.errors
    return out


# --- output --------------------------------------------------------------------------------


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def _met(flag: bool | None) -> str:
    return {True: "MET", False: "NOT MET", None: "not evaluated"}[flag]


_COLUMNS = (
    ("target", 9, lambda f: f["target"]),
    ("msgs/s", 10, lambda f: _num(f["rate"], "{:.0f}")),
    ("p50 ms", 8, lambda f: _num(f["p50_ms"])),
    ("p99 ms", 8, lambda f: _num(f["p99_ms"])),
    ("max ms", 8, lambda f: _num(f["max_ms"], "{:.1f}")),
    ("calls", 9, lambda f: str(f["calls"])),
    ("errors", 7, lambda f: str(f["errors"])),
    ("late", 6, lambda f: str(f["late_ticks"])),
    ("target CPU", 11, lambda f: _num(f["target_cpu_pct"], "{:.0f}%")),
    ("loadgen CPU", 12, lambda f: _num(f["loadgen_cpu_pct"], "{:.0f}%")),
    ("peak RSS MB", 12, lambda f: _num(f["peak_rss_mb"], "{:.1f}")),
)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    header = "".join(
        name.rjust(width) if i else name.ljust(width) for i, (name, width, _) in enumerate(_COLUMNS)
    )
    lines = [header]
    for row in rows:
        cells = [fn(row) for _, _, fn in _COLUMNS]
        lines.append(
            "".join(
                cell.rjust(width) if i else cell.ljust(width)
                for i, (cell, (_, width, _)) in enumerate(zip(cells, _COLUMNS, strict=True))
            )
        )
    return lines


def _details(rows: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for f in rows:
        if f["server_calls"]:
            asked = ", ".join(f"{a} x{n}" for a, n in sorted(f["server_calls"].items()))
            lines.append(f"  {f['target']} sent CALLs to the chargers: {asked}")
        lines += [f"  {f['target']}: {note}" for note in f["notes"]]
        if f["connected"] < f["chargers"]:
            lines.append(f"  {f['target']}: only {f['connected']}/{f['chargers']} chargers set up")
        if f["errors"]:
            lines.append("")
            lines.append(
                f"!!! {f['target']}: {f['errors']} ERRORS, these figures do not measure the normal path:"
            )
            lines.append(
                f"!!!   setup failed {f['setup_failed']}, CALLERROR {f['call_errors']}, "
                f"protocol {f['protocol_errors']}, timeouts {f['timeouts']}, "
                f"disconnects {f['disconnects']}"
            )
            for sample, count in Counter(f["error_samples"]).items():
                lines.append(f"!!!   {sample}" + (f"  (x{count})" if count > 1 else ""))
    return lines


def render_text(report: dict[str, Any]) -> str:
    out: list[str] = []
    machine = report["machine"]
    out.append(
        f"evpark OCPP bench: {machine['cpus']} CPUs, load average "
        f"{machine['loadavg_start'][0]:.2f} at start, {machine['loadavg_end'][0]:.2f} at end; "
        f"event loop {report['event_loop']} for the echo and the edge it starts"
    )
    if "saturation" in report:
        s = report["saturation"]
        out.append("")
        out.append(
            f"== saturation: {s['chargers']} OCPP 1.6 chargers, closed loop, one MeterValues "
            f"(4 sampled values) in flight each; {s['duration_s']:g} s measured after "
            f"{s['warmup_s']:g} s warm-up"
        )
        rows = [
            {**f, "target": f"{name} #{number}"}
            for number, r in enumerate(s["rounds"], 1)
            for name, f in r.items()
            if name != "ratio"
        ]
        out += _table(rows)
        if s["ratio"] is not None:
            each = "  ".join(f"{r:.3f}" for r in s["ratios"])
            out.append(f"ratio edge/echo per round: {each}")
            out.append(
                f"ratio edge/echo (median of the rounds): {s['ratio']:.3f}   "
                f"(target >= {s['target_ratio']}: {_met(s['met'])})"
            )
        out += _details(list(s["runs"].values()))
    if "site" in report:
        s = report["site"]
        out.append("")
        msg201 = "TransactionEvent" if s["v201_message"] == "transaction-event" else "MeterValues"
        out.append(
            f"== site load: {s['chargers']} chargers ({s['chargers_16']} x 1.6 MeterValues, "
            f"{s['chargers_201']} x 2.0.1 {msg201}), one message every {s['interval_s']:g} s "
            f"each; {s['duration_s']:g} s measured after {s['warmup_s']:g} s warm-up"
        )
        run = s["run"]
        out += _table([run])
        if run["sampled_rss_max_mb"] is not None:
            out.append(f"RSS sampled during the run: max {run['sampled_rss_max_mb']:.1f} MB")
        out.append(
            f"p99 < {s['target_p99_ms']:g} ms: {_met(s['p99_met'])}    "
            f"peak RSS < {s['target_rss_mb']:g} MB: {_met(s['rss_met'])}"
        )
        out += _details([run])
    out.append("")
    if report["errors"]:
        out.append(f"!!! {report['errors']} ERRORS: the figures above are NOT valid measurements")
    else:
        out.append(f"no errors; targets: {_met(report['targets_met'])}")
    return "\n".join(out) + "\n"
