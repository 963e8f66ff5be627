"""Flows: see ../shared/ARCHITECTURE.md."""
