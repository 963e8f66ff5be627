"""The one path that writes to a cluster: recommendations, role check, guardrails, dry-run, apply, audit, rollback.

Nothing else in aiops writes to a cluster (an import-linter contract and a test enforce it). Import the parts you
need from their modules; this package's `__init__` stays empty so `aiops.settings` can use `aiops.actuator.policy`.
"""
