"""`python -m inventory_service`: run the Inventory Service with settings from the environment."""

from __future__ import annotations

import asyncio

from inventory_service.config import InventoryConfig
from inventory_service.server import serve
from valerix_common.telemetry import configure_logging, configure_telemetry


def main() -> None:
    configure_logging("inventory")
    configure_telemetry("valerix-inventory", instrument_grpc_server=True)
    asyncio.run(serve(InventoryConfig.from_env()))


if __name__ == "__main__":
    main()
