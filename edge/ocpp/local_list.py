"""A charger back with an older local list than the site's gets the whole current one.

A charger that was offline when central sent a newer id tag list, or was reset, would
otherwise accept offline by an old list. After its boot is accepted (and answered) the
site asks its list version (GetLocalListVersion) and, if it holds an older numbered list,
sends the full one. Only a site that holds a numbered list from central asks: without a
version there is nothing to compare.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from edge.core import commands as cmd
from edge.core.ids import ChargerId
from edge.ocpp.charger_calls import ChargerOffline, CommandTimeout, InvalidCommand, send_command
from edge.ocpp.connection import CallFailed
from edge.services.site import local_list

if TYPE_CHECKING:
    from edge.ocpp.server import OcppServer

log = structlog.get_logger(__name__)


async def resend_if_older(server: OcppServer, charger_id: ChargerId) -> None:
    site = server.site
    current = site.id_tags_version
    try:
        held = await send_command(server, charger_id, cmd.GetLocalListVersion())
        charger_version = int(held.detail["list_version"])
        if charger_version < 0 or charger_version >= current:
            return  # -1: a 1.6 charger with its local list disabled
        full = local_list(current, True, site.id_tags)
        sent = await send_command(server, charger_id, full)
    except (ChargerOffline, CommandTimeout, InvalidCommand, CallFailed) as err:
        log.info("ocpp.local_list.check_failed", charger=charger_id, error=str(err))
        return
    except Exception:  # it runs in the server's TaskGroup: one odd charger must not stop it
        log.exception("ocpp.local_list.check_crashed", charger=charger_id)
        return
    log.info("ocpp.local_list.resent", charger=charger_id, held=charger_version,
             version=current, tags=len(full.entries), status=sent.status)  # fmt: skip
