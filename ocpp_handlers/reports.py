"""What a charger tells of itself beyond charging, in either version: security events,
firmware and log status, certificates, reports and notices.

Every message a charger may send is answered as its response schema requires (never
NotSupported: chargers retry, or abort a firmware update, on that) and kept as a charger
event for the technician; the ones central cares about (security events, firmware and
log/diagnostics status) go upstream too (see :class:`edge.core.site_port.SitePort`). The
payloads these read have the same shape in 1.6 (Security Whitepaper) and 2.0.1.
"""

from __future__ import annotations

from edge.core.power.model import PHASE_VOLTAGE
from ocpp_handlers.base import Handler, HandlerContext, Payload, parse_time


def recorder(kind: str, answer: Payload | None = None) -> Handler:
    """A handler that keeps the message as a charger event of ``kind`` and answers
    ``answer`` (``{}`` unless the response schema asks for more)."""
    reply: Payload = answer or {}

    async def record(ctx: HandlerContext, p: Payload) -> Payload:
        await ctx.site.record_event(ctx.charger_id, kind, p)
        return dict(reply)  # a copy: the answer is the connection's to send

    return record


async def security_event(ctx: HandlerContext, p: Payload) -> Payload:
    at = parse_time(p["timestamp"], "timestamp")
    await ctx.site.security_event(ctx.charger_id, p["type"], at, p.get("techInfo"), p)
    return {}


async def notify_report(ctx: HandlerContext, p: Payload) -> Payload:
    """2.0.1 NotifyReport: a part of a report the site asked for (GetBaseReport), taken
    by the configuration read that waits for it; kept as a charger event otherwise."""
    await ctx.site.notify_report(ctx.charger_id, p)
    return {}


async def firmware_status(ctx: HandlerContext, p: Payload) -> Payload:
    """1.6 FirmwareStatusNotification and SignedFirmwareStatusNotification, 2.0.1
    FirmwareStatusNotification (only the signed one and 2.0.1 name the request)."""
    await ctx.site.firmware_status(ctx.charger_id, p["status"], p.get("requestId"), p)
    return {}


async def log_status(ctx: HandlerContext, p: Payload) -> Payload:
    """1.6 LogStatusNotification (security), 2.0.1 LogStatusNotification."""
    await ctx.site.log_status(ctx.charger_id, p["status"], p.get("requestId"), p)
    return {}


async def diagnostics_status(ctx: HandlerContext, p: Payload) -> Payload:
    """1.6 DiagnosticsStatusNotification: a log status that names no request."""
    await ctx.site.log_status(ctx.charger_id, p["status"], None, p, kind="diagnostics_status")
    return {}


# The site has no certificate authority yet: a certificate signing request is refused
# (the charger keeps its certificate and asks again later), and nothing is known of a
# certificate's status or of an ISO 15118 contract certificate.
sign_certificate = recorder("sign_certificate", {"status": "Rejected"})


async def data_transfer(ctx: HandlerContext, p: Payload) -> Payload:
    """No vendor extension is known to the site: kept, and answered so."""
    await ctx.site.record_event(ctx.charger_id, "data_transfer", p)
    return {"status": "UnknownVendorId"}


async def ev_charging_needs(ctx: HandlerContext, p: Payload) -> Payload:
    """2.0.1 NotifyEVChargingNeeds: the car's departure and energy; Accepted when the
    site's load manager will send it a schedule, Rejected (no such service) otherwise."""
    needs = p["chargingNeeds"]
    departure = needs.get("departureTime")
    parameters = needs.get("acChargingParameters") or needs.get("dcChargingParameters") or {}
    energy = parameters.get("energyAmount")
    planned = await ctx.site.ev_charging_needs(
        ctx.charger_id,
        int(p["evseId"]),
        None if departure is None else parse_time(departure, "departureTime"),
        None if energy is None else float(energy),
        p,
    )
    return {"status": "Accepted" if planned else "Rejected"}


def _schedule_limit_w(schedule: Payload) -> float | None:
    """The first period's limit of a charging schedule, in W (A on 3 phases unless the
    period says otherwise, at the nominal voltage)."""
    periods = schedule.get("chargingSchedulePeriod") or []
    if not periods:
        return None
    first = periods[0]
    limit = float(first["limit"])
    if schedule.get("chargingRateUnit") == "A":
        return limit * PHASE_VOLTAGE * int(first.get("numberPhases", 3))
    return limit


async def charging_limit(ctx: HandlerContext, p: Payload) -> Payload:
    """2.0.1 NotifyChargingLimit: another source limits the station; the load manager
    takes it as a cap on what it offers there."""
    schedules = p.get("chargingSchedule") or []
    limit = _schedule_limit_w(schedules[0]) if schedules else None
    source = str(p["chargingLimit"]["chargingLimitSource"])
    await ctx.site.charging_limit(ctx.charger_id, p.get("evseId"), source, limit, p)
    return {}


async def charging_limit_cleared(ctx: HandlerContext, p: Payload) -> Payload:
    """2.0.1 ClearedChargingLimit: that source's limit is gone."""
    source = str(p["chargingLimitSource"])
    await ctx.site.charging_limit(ctx.charger_id, p.get("evseId"), source, None, p)
    return {}
