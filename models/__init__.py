"""Models: see ../shared/ARCHITECTURE.md."""
