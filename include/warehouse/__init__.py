"""DuckDB warehouse: one file, one writer at a time, schema by versioned migrations."""

from include.warehouse.connection import connect, read_only, transaction
from include.warehouse.migrate import migrate

__all__ = ["connect", "migrate", "read_only", "transaction"]
