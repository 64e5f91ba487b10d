"""From one event and the users' preferences to the notifications to send. No I/O.

The event's data is read through its contract (:func:`~central.notification.model.notified_data`);
a completed session is priced once (:mod:`central.notification.costs`), each message is
worded in its user's language and time zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from central.notification.costs import session_cost
from central.notification.model import URGENT_EVENT_TYPES, Channel, notified_data
from central.notification.preferences import (
    Preferences,
    concerned_by,
    deliver_at,
    recipients,
)
from central.notification.retry import dedup_key
from central.notification.templates import (
    MessageTemplate,
    TemplateKey,
    display_values,
    render,
    resolve_template,
    template_context,
)
from central.reported_times import DEFAULT_POLICY, ClockPolicy
from contract.envelope import CloudEvent
from contract.events import ChargingCompleted


@dataclass(frozen=True)
class PlannedNotification:
    dedup_key: str
    user_id: str
    event_id: str
    event_type: str
    site_id: str
    channel: Channel
    address: str
    locale: str
    subject: str
    body: str
    urgent: bool
    created_at: datetime
    deliver_at: datetime


def plan(
    event: CloudEvent,
    candidates: Iterable[Preferences],
    overrides: Mapping[TemplateKey, MessageTemplate],
    now: datetime,
    *,
    fallback_locale: str = "en",
    urgent_types: frozenset[str] = URGENT_EVENT_TYPES,
    clock_policy: ClockPolicy = DEFAULT_POLICY,
) -> list[PlannedNotification]:
    """One notification per concerned, subscribed user and usable channel. Raises
    :class:`pydantic.ValidationError` when the event's data does not fit its type.
    ``clock_policy``: how far reported times are believed when pricing a session."""
    data = notified_data(event)
    if data is None:
        return []
    urgent = event.type in urgent_types
    values = display_values(data)
    cost = (
        session_cost(data, received=now, policy=clock_policy)
        if isinstance(data, ChargingCompleted)
        else None
    )
    planned: list[PlannedNotification] = []
    for prefs in recipients(candidates, concerned_by(data)):
        if not prefs.wants(event.type):
            continue
        context = template_context(
            event_type=event.type,
            site_id=event.site_id,
            event_time=event.time,
            data=values,
            user_id=prefs.user_id,
            timezone=prefs.timezone,
            locale=prefs.locale,
            cost=cost,
        )
        when = deliver_at(prefs, now, urgent=urgent)
        for channel, address in prefs.usable_channels():
            template = resolve_template(
                overrides, event.type, channel, prefs.locale, fallback_locale=fallback_locale
            )
            if template is None:
                continue
            message = render(template, context)
            planned.append(
                PlannedNotification(
                    dedup_key=dedup_key(event.id, prefs.user_id, channel),
                    user_id=prefs.user_id,
                    event_id=event.id,
                    event_type=event.type,
                    site_id=event.site_id,
                    channel=channel,
                    address=address,
                    locale=prefs.locale,
                    subject=message.subject,
                    body=message.body,
                    urgent=urgent,
                    created_at=now,
                    deliver_at=when,
                )
            )
    return planned
