"""Operations: the inventory's chaos switches (local stacks only, `ADMIN_API_ENABLED`) and the bus's counts."""

from __future__ import annotations

import logging
from typing import Any

from order_functions.application.errors import AdminApiDisabled, ChaosAdminRefused, ChaosSettingsRefused
from order_functions.application.ports import ChaosControls, ChaosSwitches, InventoryRefused, QueueStats

log = logging.getLogger(__name__)

# The Gremlin delays the chaos RPCs too (up to 60 s): switching it off must still get through.
CHAOS_GET_TIMEOUT_S = 15.0
CHAOS_SET_TIMEOUT_S = 65.0


class ChaosAdmin:
    def __init__(self, controls: ChaosControls, enabled: bool) -> None:
        self.controls = controls
        self.enabled = enabled

    async def current(self) -> ChaosSwitches:
        self._require_enabled()
        try:
            return await self.controls.get_chaos(CHAOS_GET_TIMEOUT_S)
        except InventoryRefused as exc:
            raise _refusal(exc) from exc

    async def apply(self, wanted: ChaosSwitches) -> ChaosSwitches:
        self._require_enabled()
        try:
            applied = await self.controls.set_chaos(wanted, CHAOS_SET_TIMEOUT_S)
        except InventoryRefused as exc:
            raise _refusal(exc) from exc
        log.warning("chaos settings changed through the admin API: %s", applied)
        return applied

    def _require_enabled(self) -> None:
        if not self.enabled:
            raise AdminApiDisabled()


def _refusal(exc: InventoryRefused) -> Exception:
    if exc.code == "PERMISSION_DENIED":
        return ChaosAdminRefused()
    return ChaosSettingsRefused(exc.detail)


class BusStatus:
    def __init__(self, kind: str, queue_name: str, stats: QueueStats | None) -> None:
        self.kind = kind
        self.queue_name = queue_name
        self.stats = stats

    async def __call__(self) -> dict[str, Any]:
        counts = await self.stats.stats() if self.stats is not None else None
        return {"kind": self.kind, "queue": self.queue_name, "stats": counts}
