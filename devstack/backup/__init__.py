"""Backups for a backup service that accepts one call a day: everything goes into one archive, one upload."""
