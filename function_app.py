"""Azure Functions entry point (Python v2 programming model): the host indexes `app` from this file."""

from order_functions import bootstrap
from order_functions.addons.notifications import service as notifications
from order_functions.interface.app import app

__all__ = ["app", "shutdown"]


async def shutdown() -> None:
    """Closes the process's clients: the core's and the add-ons'."""
    await bootstrap.shutdown()
    await notifications.shutdown()
