"""Provisioning a charger over OCPP: read its configuration, apply the site's keys, and
let it boot (docs/provisioning.md).

Runs in the OCPP server's TaskGroup after a boot that calls for it (a Pending one, or an
accepted one with keys not yet applied): 1.6 GetConfiguration then ChangeConfiguration
per key; 2.0.1 GetBaseReport(FullInventory), its NotifyReport parts collected by
requestId until ``tbc`` is false, then SetVariables in batches. The configuration read
is stored; how it went is stored and kept as a charger event. A charger held Pending is
then sent TriggerMessage(BootNotification), so it need not wait for its interval.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any, Final

import structlog

from edge.core import commands as cmd
from edge.core import provisioning as core
from edge.core.ids import ChargerId
from edge.ocpp.charger_calls import ChargerOffline, CommandTimeout, InvalidCommand, send_command
from edge.ocpp.connection import CallFailed
from edge.storage.provisioning_sql import ConfigEntry
from ocpp_handlers.schemas import Version

if TYPE_CHECKING:
    from edge.ocpp.server import OcppServer

log = structlog.get_logger(__name__)
SET_VARIABLES_BATCH: Final = 20
_request_ids = itertools.count(1)
# what makes a read or a change fail (the charger's own refusals are statuses, not these)
CALL_FAILURES: Final = (CommandTimeout, InvalidCommand, CallFailed, TimeoutError)


class ReadFailed(CallFailed):
    """The charger would not report its configuration (``code``: its status)."""


async def read_configuration(server: OcppServer, charger_id: ChargerId) -> dict[str, str | None]:
    """Read the charger's whole configuration and store it; key -> value.

    Raises ChargerOffline or one of :data:`CALL_FAILURES` (:class:`ReadFailed` too).
    """
    connection = server.connections.get(charger_id)
    if connection is None:
        raise ChargerOffline(charger_id)
    if connection.version is Version.V16:
        entries, source = await _read_keys(server, charger_id), "GetConfiguration"
    else:
        entries, source = await _read_report(server, charger_id), "NotifyReport"
    await server.site.provisioning.save_read(charger_id, entries, source)
    log.info("ocpp.configuration.read", charger=charger_id, source=source, keys=len(entries))
    return {entry.key: entry.value for entry in entries}


async def _read_keys(server: OcppServer, charger_id: ChargerId) -> list[ConfigEntry]:
    answer = await send_command(server, charger_id, cmd.GetConfiguration())
    return [
        ConfigEntry(str(item["key"]), item.get("value"), bool(item["readonly"]))
        for item in answer.detail.get("configurationKey", [])
    ]


async def _read_report(server: OcppServer, charger_id: ChargerId) -> list[ConfigEntry]:
    connection = server.connections.get(charger_id)
    if connection is None:
        raise ChargerOffline(charger_id)
    request_id = next(_request_ids)
    wait = server.config.ocpp.provisioning_timeout
    with server.site.provisioning.expect_report(charger_id, request_id) as parts:
        try:
            answer = await connection.call(
                "GetBaseReport", {"requestId": request_id, "reportBase": "FullInventory"},
                server.config.ocpp.call_timeout,
            )  # fmt: skip
        except ConnectionError as err:
            raise ChargerOffline(charger_id) from err
        if answer["status"] == "EmptyResultSet":
            return []
        if answer["status"] != "Accepted":
            raise ReadFailed(str(answer["status"]), "GetBaseReport was not accepted")
        async with asyncio.timeout(wait):
            report = await parts.complete
    found: dict[str, ConfigEntry] = {}  # one row per key, whatever the charger repeats
    for item in report:
        entry = _entry(item)
        if entry is not None:
            found[entry.key] = entry
    return list(found.values())


def _entry(item: dict[str, Any]) -> ConfigEntry | None:
    """A ReportData's Actual attribute as a stored entry (None if it has none)."""
    component, variable = item["component"], item["variable"]
    key = core.VariableKey(
        component["name"], variable["name"], component.get("evse", {}).get("id"),
        variable.get("instance"),
    )  # fmt: skip
    for attribute in item.get("variableAttribute", []):
        if attribute.get("type", "Actual") == "Actual":
            mutability = attribute.get("mutability", "ReadWrite")
            return ConfigEntry(str(key), attribute.get("value"), mutability == "ReadOnly",
                               mutability)  # fmt: skip
    return None


async def apply(
    server: OcppServer, charger_id: ChargerId, version: Version, todo: dict[str, str]
) -> dict[str, str]:
    """Send each key's value; key -> the charger's status for it."""
    results: dict[str, str] = {}
    if version is Version.V16:
        for key, value in todo.items():
            answer = await send_command(server, charger_id, cmd.ChangeConfiguration(key, value))
            results[key] = answer.status
        return results
    items = list(todo.items())
    for start in range(0, len(items), SET_VARIABLES_BATCH):
        batch = items[start : start + SET_VARIABLES_BATCH]
        refs = []
        for key, value in batch:
            parsed = core.parse_variable_key(key)  # checked when the config was loaded
            refs.append(cmd.VariableRef(parsed.component, parsed.variable, parsed.evse_id,
                                        parsed.instance, value))  # fmt: skip
        answer = await send_command(server, charger_id, cmd.SetVariables(tuple(refs)))
        statuses = [r.get("attributeStatus", "Rejected") for r in
                    answer.detail.get("setVariableResult", [])]  # fmt: skip
        for index, (key, _) in enumerate(batch):
            # matched by position: the results come in the order of the request
            results[key] = str(statuses[index]) if index < len(statuses) else "Rejected"
    return results


async def provision(server: OcppServer, charger_id: ChargerId, *, pending: bool) -> None:
    """Read, apply, store, and (``pending``) trigger the boot that will be accepted."""
    connection = server.connections.get(charger_id)
    if connection is None:
        return
    version = connection.version
    setup = server.config.charger_setup(charger_id)
    fingerprint = setup.fingerprint(version.value)
    service = server.site.provisioning
    try:
        held = await read_configuration(server, charger_id)
        todo = core.changes(setup.wanted(version.value), held)
        results = await apply(server, charger_id, version, todo)
        result = core.outcome(fingerprint, results)
        await service.finish(charger_id, result, {k: todo[k] for k in result.applied})
    except ChargerOffline:
        # tried again when it is back (a Pending charger is still Pending then)
        log.info("ocpp.provisioning.offline", charger=charger_id)
        return
    except CALL_FAILURES as err:
        await service.finish(charger_id, core.failure(fingerprint, _reason(err)), {})
    except Exception:  # it runs in the server's TaskGroup: one odd charger must not stop it
        log.exception("ocpp.provisioning.crashed", charger=charger_id)
        return
    if pending:
        await _trigger_boot(server, charger_id)


def _reason(err: Exception) -> str:
    """What went wrong, for the technician (the API's ``provisioning.reason``)."""
    if isinstance(err, CommandTimeout):
        return "the charger did not answer in time"
    if isinstance(err, TimeoutError):
        return "the charger's report did not come in time"
    if isinstance(err, CallFailed):
        return f"{err.code}: {err.description}"
    return str(err)


async def _trigger_boot(server: OcppServer, charger_id: ChargerId) -> None:
    try:
        sent = await send_command(server, charger_id, cmd.TriggerMessage("BootNotification"))
    except (ChargerOffline, *CALL_FAILURES) as err:
        # it boots again after the Pending interval anyway
        log.info("ocpp.provisioning.trigger_failed", charger=charger_id, error=str(err))
        return
    log.info("ocpp.provisioning.boot_triggered", charger=charger_id, status=sent.status)
