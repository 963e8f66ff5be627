from datetime import datetime, timedelta, timezone

import pytest

from aiops.errors import UnknownNameError
from aiops.ingest import Window, check_metrics, plan_windows
from aiops.metrics import METRICS

UTC = timezone.utc


def test_windows_align_to_midnight_whatever_the_start():
    ws = plan_windows(datetime(2026, 11, 2, 7, 30, tzinfo=UTC), datetime(2026, 11, 3, 1, 0, tzinfo=UTC),
                      timedelta(hours=6))
    assert ws[0] == Window(datetime(2026, 11, 2, 6, tzinfo=UTC), datetime(2026, 11, 2, 12, tzinfo=UTC))
    assert [w.start.hour for w in ws] == [6, 12, 18]  # the partial 00:00-06:00 window of the 3rd is not complete
    assert all(w.end - w.start == timedelta(hours=6) for w in ws)


def test_naive_times_are_utc_and_an_empty_range_is_an_error():
    ws = plan_windows(datetime(2026, 11, 2), datetime(2026, 11, 2, 2), timedelta(hours=1))
    assert [w.start for w in ws] == [datetime(2026, 11, 2, 0, tzinfo=UTC), datetime(2026, 11, 2, 1, tzinfo=UTC)]
    with pytest.raises(ValueError, match="end .* must be after start"):
        plan_windows(datetime(2026, 11, 2, 2), datetime(2026, 11, 2), timedelta(hours=1))


def test_metric_names_are_checked_against_the_catalogue():
    assert check_metrics(None) == list(METRICS)
    assert check_metrics(["cpu_usage", "cpu_usage", "replicas"]) == ["cpu_usage", "replicas"]
    with pytest.raises(UnknownNameError, match="unknown metric 'cpu_usgae'; known metrics: .*cpu_usage"):
        check_metrics(["cpu_usgae"])
