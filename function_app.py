"""Azure Functions entry point (Python v2 programming model): the host indexes `app` from this file."""

from order_functions.bootstrap import shutdown
from order_functions.interface.app import app

__all__ = ["app", "shutdown"]
