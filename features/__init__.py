"""Features: see ../shared/ARCHITECTURE.md."""
