"""The notification service's storage: SQLAlchemy Core on its own database.

Every function takes a connection inside the caller's transaction, except the queue
functions which own a short transaction each.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.infra.paging import Key, after
from central.notification.model import Channel, UserId
from central.notification.planning import PlannedNotification
from central.notification.preferences import ChannelSetting, Concerned, Preferences, QuietHours
from central.notification.tables import (
    notification_queue,
    notification_templates,
    notifications,
    user_identities,
    user_preferences,
)
from central.notification.templates import MessageTemplate, TemplateKey


def _insert(conn: AsyncConnection, table: Any) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# -- preferences -------------------------------------------------------------------


def _prefs_from_row(row: Any, vehicles: Sequence[str], tags: Sequence[str]) -> Preferences:
    quiet = None
    if row.quiet_start and row.quiet_end:
        quiet = QuietHours(
            time.fromisoformat(row.quiet_start), time.fromisoformat(row.quiet_end), row.timezone
        )
    return Preferences(
        user_id=UserId(row.user_id),
        locale=row.locale,
        timezone=row.timezone,
        channels={
            "email": ChannelSetting(row.email_enabled, row.email),
            "sms": ChannelSetting(row.sms_enabled, row.phone),
            "push": ChannelSetting(row.push_enabled, row.push_token),
        },
        events=frozenset(row.events),
        vehicle_ids=frozenset(vehicles),
        id_tags=frozenset(tags),
        quiet_hours=quiet,
    )


async def _load(conn: AsyncConnection, user_ids: Sequence[str]) -> list[Preferences]:
    if not user_ids:
        return []
    rows = (
        await conn.execute(select(user_preferences).where(user_preferences.c.user_id.in_(user_ids)))
    ).all()
    idents = (
        await conn.execute(select(user_identities).where(user_identities.c.user_id.in_(user_ids)))
    ).all()
    found = []
    for row in rows:
        mine = [i for i in idents if i.user_id == row.user_id]
        found.append(
            _prefs_from_row(
                row,
                [i.value for i in mine if i.kind == "vehicle"],
                [i.value for i in mine if i.kind == "id_tag"],
            )
        )
    return sorted(found, key=lambda p: p.user_id)


async def get_preferences(conn: AsyncConnection, user_id: str) -> Preferences | None:
    found = await _load(conn, [user_id])
    return found[0] if found else None


async def candidates(conn: AsyncConnection, who: Concerned) -> list[Preferences]:
    """The users an event may concern: its driver, or those owning its vehicle or id tag
    (:func:`~central.notification.preferences.recipients` chooses among them)."""
    if who.driver_ids:
        return await _load(conn, sorted(who.driver_ids))
    conditions = []
    if who.vehicle_ids:
        conditions.append(
            (user_identities.c.kind == "vehicle") & user_identities.c.value.in_(who.vehicle_ids)
        )
    if who.id_tags:
        conditions.append(
            (user_identities.c.kind == "id_tag") & user_identities.c.value.in_(who.id_tags)
        )
    if not conditions:
        return []
    rows = await conn.execute(select(user_identities.c.user_id).where(or_(*conditions)))
    return await _load(conn, sorted({row.user_id for row in rows}))


async def put_preferences(conn: AsyncConnection, prefs: Preferences, now: datetime) -> None:
    def channel(name: Channel) -> ChannelSetting:
        return prefs.channels.get(name, ChannelSetting())

    values = {
        "locale": prefs.locale,
        "timezone": prefs.timezone,
        "email": channel("email").address,
        "email_enabled": channel("email").enabled,
        "phone": channel("sms").address,
        "sms_enabled": channel("sms").enabled,
        "push_token": channel("push").address,
        "push_enabled": channel("push").enabled,
        "events": sorted(prefs.events),
        "quiet_start": prefs.quiet_hours.start.strftime("%H:%M") if prefs.quiet_hours else None,
        "quiet_end": prefs.quiet_hours.end.strftime("%H:%M") if prefs.quiet_hours else None,
        "updated_at": now,
    }
    stmt = _insert(conn, user_preferences).values(user_id=prefs.user_id, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["user_id"], set_=values))
    await conn.execute(delete(user_identities).where(user_identities.c.user_id == prefs.user_id))
    idents = [{"kind": "vehicle", "value": v, "user_id": prefs.user_id} for v in prefs.vehicle_ids]
    idents += [{"kind": "id_tag", "value": t, "user_id": prefs.user_id} for t in prefs.id_tags]
    if idents:
        await conn.execute(user_identities.insert(), idents)


async def delete_preferences(conn: AsyncConnection, user_id: str) -> bool:
    await conn.execute(delete(user_identities).where(user_identities.c.user_id == user_id))
    result = await conn.execute(
        delete(user_preferences).where(user_preferences.c.user_id == user_id)
    )
    return bool(result.rowcount)


# -- templates ---------------------------------------------------------------------


async def template_overrides(
    conn: AsyncConnection, event_type: str | None = None
) -> dict[TemplateKey, MessageTemplate]:
    query = select(notification_templates)
    if event_type is not None:
        query = query.where(notification_templates.c.event_type == event_type)
    rows = (await conn.execute(query)).all()
    return {
        (row.event_type, row.channel, row.locale): MessageTemplate(row.subject, row.body)
        for row in rows
    }


async def put_template(
    conn: AsyncConnection, key: TemplateKey, template: MessageTemplate, now: datetime
) -> None:
    event_type, channel, locale = key
    values = {"subject": template.subject, "body": template.body, "updated_at": now}
    stmt = _insert(conn, notification_templates).values(
        event_type=event_type, channel=channel, locale=locale, **values
    )
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=["event_type", "channel", "locale"], set_=values)
    )


async def delete_template(conn: AsyncConnection, key: TemplateKey) -> bool:
    t = notification_templates.c
    result = await conn.execute(
        delete(notification_templates).where(tuple_(t.event_type, t.channel, t.locale) == key)
    )
    return bool(result.rowcount)


# -- notifications and the queue -----------------------------------------------------


async def enqueue(conn: AsyncConnection, planned: Sequence[PlannedNotification]) -> int:
    """Store and queue planned notifications; ones already stored (same dedup key) are
    skipped, so a redelivered event notifies nobody twice. Returns how many are new."""
    new = 0
    for item in planned:
        notification_id = str(uuid.uuid4())
        stmt = (
            _insert(conn, notifications)
            .values(
                id=notification_id,
                dedup_key=item.dedup_key,
                user_id=item.user_id,
                event_id=item.event_id,
                event_type=item.event_type,
                site_id=item.site_id,
                channel=item.channel,
                address=item.address,
                locale=item.locale,
                subject=item.subject,
                body=item.body,
                urgent=item.urgent,
                status="queued",
                attempts=0,
                created_at=item.created_at,
                deliver_at=item.deliver_at,
                updated_at=item.created_at,
            )
            .on_conflict_do_nothing(index_elements=["dedup_key"])
        )
        if (await conn.execute(stmt)).rowcount != 1:
            continue
        await conn.execute(
            notification_queue.insert().values(
                notification_id=notification_id,
                channel=item.channel,
                state="pending",
                attempts=0,
                next_attempt_at=item.deliver_at,
                updated_at=item.created_at,
            )
        )
        new += 1
    return new


@dataclass(frozen=True)
class QueuedMessage:
    id: str
    user_id: str
    event_id: str
    event_type: str
    channel: Channel
    address: str
    subject: str
    body: str
    urgent: bool
    attempts: int


async def claim_due(
    engine: AsyncEngine, now: datetime, lease: timedelta, limit: int
) -> list[QueuedMessage]:
    """Claim up to ``limit`` due messages for ``lease``; an unreported claim expires and
    the message becomes due again.

    One ``UPDATE ... RETURNING`` statement: atomic on SQLite; on PostgreSQL replicas skip
    each other's locked rows, and the outer condition is re-checked on a row another
    replica claimed meanwhile, so no message is claimed twice.
    """
    q, n = notification_queue.c, notifications.c
    due = (q.state == "pending") & (q.next_attempt_at <= now)
    inner = (
        select(q.notification_id)
        .where(due)
        .order_by(q.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    async with engine.begin() as conn:
        claimed = (
            await conn.execute(
                update(notification_queue)
                .where(q.notification_id.in_(inner.scalar_subquery()), due)
                .values(next_attempt_at=now + lease, updated_at=now)
                .returning(q.notification_id, q.attempts)
            )
        ).all()
        if not claimed:
            return []
        attempts = {row.notification_id: row.attempts for row in claimed}
        rows = (
            await conn.execute(
                select(notifications).where(n.id.in_(attempts)).order_by(n.created_at, n.id)
            )
        ).all()
    return [
        QueuedMessage(
            id=row.id,
            user_id=row.user_id,
            event_id=row.event_id,
            event_type=row.event_type,
            channel=row.channel,
            address=row.address,
            subject=row.subject,
            body=row.body,
            urgent=row.urgent,
            attempts=attempts[row.id],
        )
        for row in rows
    ]


async def mark_sent(engine: AsyncEngine, message_id: str, attempts: int, now: datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            delete(notification_queue).where(notification_queue.c.notification_id == message_id)
        )
        await conn.execute(
            update(notifications)
            .where(notifications.c.id == message_id)
            .values(status="sent", attempts=attempts, sent_at=now, last_error=None, updated_at=now)
        )


async def mark_retry(
    engine: AsyncEngine,
    message_id: str,
    *,
    attempts: int,
    at: datetime,
    error: str,
    now: datetime,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(notification_queue)
            .where(notification_queue.c.notification_id == message_id)
            .values(attempts=attempts, next_attempt_at=at, last_error=error, updated_at=now)
        )
        await conn.execute(
            update(notifications)
            .where(notifications.c.id == message_id)
            .values(attempts=attempts, last_error=error, updated_at=now)
        )


async def mark_dead(
    engine: AsyncEngine, message_id: str, *, attempts: int, error: str, now: datetime
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(notification_queue)
            .where(notification_queue.c.notification_id == message_id)
            .values(state="dead", attempts=attempts, last_error=error, updated_at=now)
        )
        await conn.execute(
            update(notifications)
            .where(notifications.c.id == message_id)
            .values(status="dead", attempts=attempts, last_error=error, updated_at=now)
        )


async def requeue(conn: AsyncConnection, message_id: str, now: datetime) -> bool:
    """Give a dead-lettered message a fresh set of attempts."""
    result = await conn.execute(
        update(notification_queue)
        .where(
            notification_queue.c.notification_id == message_id, notification_queue.c.state == "dead"
        )
        .values(state="pending", attempts=0, next_attempt_at=now, updated_at=now)
    )
    if not result.rowcount:
        return False
    await conn.execute(
        update(notifications)
        .where(notifications.c.id == message_id)
        .values(status="queued", updated_at=now)
    )
    return True


def notification_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "user_id": row.user_id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "site_id": row.site_id,
        "channel": row.channel,
        "address": row.address,
        "subject": row.subject,
        "body": row.body,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "deliver_at": row.deliver_at,
        "sent_at": row.sent_at,
    }


async def list_notifications(
    conn: AsyncConnection,
    *,
    user_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    before: datetime | None = None,
    after_key: Key | None = None,
) -> list[dict[str, Any]]:
    """Newest first, by ``(created_at, id)``; ``after_key``: the key of the previous
    page's last item (see :mod:`central.infra.paging`)."""
    n = notifications.c
    query = select(notifications).order_by(n.created_at.desc(), n.id.desc()).limit(limit)
    if user_id is not None:
        query = query.where(n.user_id == user_id)
    if status is not None:
        query = query.where(n.status == status)
    if before is not None:
        query = query.where(n.created_at < before)
    if after_key is not None:
        query = query.where(after([n.created_at, n.id], after_key))
    return [notification_json(row) for row in (await conn.execute(query)).all()]


async def get_notification(conn: AsyncConnection, message_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(select(notifications).where(notifications.c.id == message_id))
    ).first()
    return None if row is None else notification_json(row)


async def queue_depth(conn: AsyncConnection) -> dict[str, int]:
    q = notification_queue.c
    rows = await conn.execute(select(q.state, func.count()).group_by(q.state))
    depth = {"pending": 0, "dead": 0}
    for state, count in rows.all():
        depth[state] = count
    return depth


async def queue_depths(engine: AsyncEngine) -> dict[str, int]:
    """Messages in the queue by state (``pending``, ``dead``), each present (0 if none)."""
    q = notification_queue.c
    async with engine.connect() as conn:
        rows = await conn.execute(select(q.state, func.count()).group_by(q.state))
        found = {state: int(count) for state, count in rows}
    return {"pending": 0, "dead": 0, **found}
