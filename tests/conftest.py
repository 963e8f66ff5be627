"""Shared test setup: no test reads the developer's own AIOPS_* settings."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_aiops_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("AIOPS_"):
            monkeypatch.delenv(key, raising=False)
