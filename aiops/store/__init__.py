"""The operational data store: raw Parquet windows with watermarks, quarantine, DuckDB reads, derived tables.

    store = Store(settings.data_dir)
    store.write_window("simulator", "cpu_usage", start, end, frame)   # atomic, idempotent, watermarked
    store.missing_windows("simulator", "cpu_usage", t0, t1, settings.ingest.window)
    store.read(["cpu_usage"], t0, t1, namespace="shop")               # canonical frame via DuckDB
"""

from aiops.store.store import Store, StoreSummary
from aiops.store.watermarks import WindowRecord

__all__ = ["Store", "StoreSummary", "WindowRecord"]
