"""Features: see ../shared/ARCHITECTURE.md.

Pure functions: a DataFrame in, a new DataFrame out; the input is never changed, nothing is read or written.
"""

from features.calendar import CALENDAR_COLUMNS, add_calendar
from features.grid import GRID_COLUMNS, to_regular_grid, wide
from features.lags import add_lags
from features.rolling import DEFAULT_STATS, add_rolling
from features.tables import (
    AGGREGATION,
    DEMAND_COLUMNS,
    UTILISATION_COLUMNS,
    build_feature_tables,
    demand_table,
    utilisation_table,
)

__all__ = [
    "AGGREGATION",
    "CALENDAR_COLUMNS",
    "DEFAULT_STATS",
    "DEMAND_COLUMNS",
    "GRID_COLUMNS",
    "UTILISATION_COLUMNS",
    "add_calendar",
    "add_lags",
    "add_rolling",
    "build_feature_tables",
    "demand_table",
    "to_regular_grid",
    "utilisation_table",
    "wide",
]
