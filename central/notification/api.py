"""The notification service's HTTP API: a user's notifications, preferences, templates,
dead letters. Bad input is a 4xx with a clear message, never a 500."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, time
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from central.auth import Principal, check_user, require
from central.infra.paging import Cursor, Limit, Page, page_of, parse_cursor
from central.notification import store
from central.notification.model import (
    CHANNELS,
    NOTIFIED_EVENT_TYPES,
    Channel,
    UserId,
    ZoneName,
)
from central.notification.preferences import ChannelSetting, Preferences, QuietHours
from central.notification.templates import (
    DEFAULT_TEMPLATES,
    MessageTemplate,
    TemplateError,
    check_template,
)

EventType = Literal[
    "parking.reserved",
    "parking.released",
    "charging.started",
    "charging.completed",
    "charging.failed",
]
assert set(get_args(EventType)) == set(NOTIFIED_EVENT_TYPES)

UserPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+$")]
LocalePattern = r"^[a-z]{2,3}(-[A-Z]{2})?$"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    address: str | None = Field(default=None, min_length=1, max_length=512)


class QuietHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: time = Field(description="local time HH:MM")
    end: time = Field(description="local time HH:MM; before start spans midnight")

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHoursIn:
        if self.start == self.end:
            raise ValueError("quiet hours need start != end")
        return self


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locale: str = Field(default="en", pattern=LocalePattern)
    timezone: ZoneName = "UTC"
    vehicle_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=50
    )
    id_tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=50
    )
    events: list[EventType] = Field(default_factory=lambda: list(get_args(EventType)))
    channels: dict[Channel, ChannelIn] = Field(default_factory=dict)
    quiet_hours: QuietHoursIn | None = None

    @model_validator(mode="after")
    def _addresses(self) -> PreferencesIn:
        checks = {"email": _EMAIL, "sms": _PHONE}
        for channel, setting in self.channels.items():
            if setting.enabled and not setting.address:
                raise ValueError(f"channel {channel} is enabled but has no address")
            pattern = checks.get(channel)
            if setting.address and pattern is not None and not pattern.match(setting.address):
                what = "an email address" if channel == "email" else "a phone number in E.164"
                raise ValueError(f"channel {channel} needs {what}")
        return self

    def to_domain(self, user_id: str) -> Preferences:
        quiet = None
        if self.quiet_hours is not None:
            quiet = QuietHours(self.quiet_hours.start, self.quiet_hours.end, self.timezone)
        return Preferences(
            user_id=UserId(user_id),
            locale=self.locale,
            timezone=self.timezone,
            channels={c: ChannelSetting(s.enabled, s.address) for c, s in self.channels.items()},
            events=frozenset(self.events),
            vehicle_ids=frozenset(self.vehicle_ids),
            id_tags=frozenset(self.id_tags),
            quiet_hours=quiet,
        )


def preferences_json(prefs: Preferences) -> dict[str, Any]:
    quiet = prefs.quiet_hours
    return {
        "user_id": prefs.user_id,
        "locale": prefs.locale,
        "timezone": prefs.timezone,
        "vehicle_ids": sorted(prefs.vehicle_ids),
        "id_tags": sorted(prefs.id_tags),
        "events": [t for t in NOTIFIED_EVENT_TYPES if t in prefs.events],
        "channels": {
            channel: {"enabled": setting.enabled, "address": setting.address}
            for channel in CHANNELS
            if (setting := prefs.channels.get(channel)) is not None
            and (setting.enabled or setting.address)
        },
        "quiet_hours": None
        if quiet is None
        else {"start": quiet.start.strftime("%H:%M"), "end": quiet.end.strftime("%H:%M")},
    }


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(default="", max_length=512)
    body: str = Field(min_length=1, max_length=10_000)


def make_router(
    engine: AsyncEngine,
    clock: Callable[[], datetime],
    wake: Callable[[], None],
    channels: Callable[[], Mapping[str, str]],
) -> APIRouter:
    """``channels()``: each configured channel's circuit breaker state."""
    router = APIRouter(tags=["notification"])
    anyone = Depends(require("driver", "operator"))
    operator = Depends(require("operator"))

    async def notification_page(
        limit: int, cursor: str | None, **filters: Any
    ) -> Page[dict[str, Any]]:
        start = parse_cursor("notifications", cursor, (datetime, str))
        async with engine.connect() as conn:
            rows = await store.list_notifications(conn, limit=limit + 1, after_key=start, **filters)
        return page_of(
            rows[:limit], rows, limit, "notifications", lambda r: (r["created_at"], r["id"])
        )

    @router.get(
        "/notifications/users/{user_id}",
        responses={400: {"description": "invalid cursor"}, 403: {"description": "another user"}},
    )
    async def user_notifications(
        user_id: UserPath,
        limit: Limit = 50,
        cursor: Cursor = None,
        before: datetime | None = None,
        status_: Annotated[Literal["queued", "sent", "dead"] | None, Query(alias="status")] = None,
        principal: Principal = anyone,
    ) -> Page[dict[str, Any]]:
        """The user's notifications, newest first."""
        check_user(principal, user_id)
        if before is not None and before.tzinfo is None:
            raise HTTPException(422, "before needs a UTC offset")
        return await notification_page(
            limit, cursor, user_id=user_id, status=status_, before=before
        )

    @router.get(
        "/notifications/users/{user_id}/preferences",
        responses={403: {"description": "another user"}},
    )
    async def get_preferences(user_id: UserPath, principal: Principal = anyone) -> dict[str, Any]:
        check_user(principal, user_id)
        async with engine.connect() as conn:
            prefs = await store.get_preferences(conn, user_id)
        if prefs is None:
            raise HTTPException(404, f"no preferences for user {user_id}")
        return preferences_json(prefs)

    @router.put(
        "/notifications/users/{user_id}/preferences",
        responses={403: {"description": "another user, or a vehicle not the user's"}},
    )
    async def put_preferences(
        user_id: UserPath, body: PreferencesIn, principal: Principal = anyone
    ) -> dict[str, Any]:
        check_user(principal, user_id)
        if principal.scope == "driver":
            # a driver is told about its own vehicles only
            foreign = sorted(set(body.vehicle_ids) - principal.vehicles)
            if foreign:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, f"vehicle {foreign[0]} is not one of this user's"
                )
            # events naming the driver reach it without any tag; a tag listed here is
            # for events that name none, and never a stranger's card: operators set others
            own_tags = {v[:20] for v in principal.vehicles}
            strange = sorted(set(body.id_tags) - own_tags)
            if strange:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"id tag {strange[0]} is not one of this user's vehicles' tags; "
                    "an operator can add it",
                )
        prefs = body.to_domain(user_id)
        async with engine.begin() as conn:
            await store.put_preferences(conn, prefs, clock())
        return preferences_json(prefs)

    @router.delete(
        "/notifications/users/{user_id}/preferences",
        status_code=204,
        responses={403: {"description": "another user"}},
    )
    async def delete_preferences(user_id: UserPath, principal: Principal = anyone) -> Response:
        check_user(principal, user_id)
        async with engine.begin() as conn:
            found = await store.delete_preferences(conn, user_id)
        if not found:
            raise HTTPException(404, f"no preferences for user {user_id}")
        return Response(status_code=204)

    @router.get("/notifications/templates", dependencies=[operator])
    async def list_templates() -> dict[str, Any]:
        async with engine.connect() as conn:
            overrides = await store.template_overrides(conn)

        def item(key: tuple[str, str, str], template: MessageTemplate) -> dict[str, str]:
            return {
                "event_type": key[0],
                "channel": key[1],
                "locale": key[2],
                "subject": template.subject,
                "body": template.body,
            }

        return {
            "overrides": [item(k, t) for k, t in sorted(overrides.items())],
            "defaults": [item(k, t) for k, t in sorted(DEFAULT_TEMPLATES.items())],
        }

    @router.put("/notifications/templates/{event_type}/{channel}/{locale}", dependencies=[operator])
    async def put_template(
        event_type: EventType,
        channel: Channel,
        locale: Annotated[str, Path(pattern=LocalePattern)],
        body: TemplateIn,
    ) -> dict[str, str]:
        try:
            check_template(body.subject)
            check_template(body.body)
        except TemplateError as err:
            raise HTTPException(422, str(err)) from err
        async with engine.begin() as conn:
            await store.put_template(
                conn,
                (event_type, channel, locale),
                MessageTemplate(body.subject, body.body),
                clock(),
            )
        return {"event_type": event_type, "channel": channel, "locale": locale, **body.model_dump()}

    @router.delete(
        "/notifications/templates/{event_type}/{channel}/{locale}",
        status_code=204,
        dependencies=[operator],
    )
    async def delete_template(
        event_type: EventType,
        channel: Channel,
        locale: Annotated[str, Path(pattern=LocalePattern)],
    ) -> Response:
        async with engine.begin() as conn:
            found = await store.delete_template(conn, (event_type, channel, locale))
        if not found:
            raise HTTPException(404, "no such template override")
        return Response(status_code=204)

    @router.get(
        "/notifications/dead-letters",
        dependencies=[operator],
        responses={400: {"description": "invalid cursor"}},
    )
    async def dead_letters(limit: Limit = 100, cursor: Cursor = None) -> Page[dict[str, Any]]:
        return await notification_page(limit, cursor, status="dead")

    @router.get("/notifications/status", dependencies=[operator])
    async def queue_status() -> dict[str, Any]:
        """The queue's depth and each channel's state (``unconfigured``, or its breaker)."""
        async with engine.connect() as conn:
            depth = await store.queue_depth(conn)
        configured = channels()
        return {
            "queue": depth,
            "channels": {c: configured.get(c, "unconfigured") for c in CHANNELS},
        }

    @router.post("/notifications/{notification_id}/retry", dependencies=[operator])
    async def retry(notification_id: Annotated[str, Path(max_length=36)]) -> dict[str, Any]:
        async with engine.begin() as conn:
            if await store.get_notification(conn, notification_id) is None:
                raise HTTPException(404, "no such notification")
            if not await store.requeue(conn, notification_id, clock()):
                raise HTTPException(status.HTTP_409_CONFLICT, "only dead letters are retried")
        wake()
        return {"id": notification_id, "status": "queued"}

    return router
