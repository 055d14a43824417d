"""Moved to `valerix_common.bus.azure_sender` (the inventory publishes too); kept so existing imports keep working."""

from valerix_common.bus.azure_sender import AzureServiceBusSender

__all__ = ["AzureServiceBusSender"]
