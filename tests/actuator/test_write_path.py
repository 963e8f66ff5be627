"""Only the actuator writes to a cluster (STYLE.md import rules, issue 5).

import-linter (run by the test command) forbids importing the `kubernetes` client outside `aiops.actuator`, with
one read-only exception; these tests check the exception really only reads, and that the contract is present and
cannot silently stop covering the code.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("aiops", "flows", "features", "models")
WRITE_VERB = re.compile(r"^(patch|replace|create|delete)_")


def _imports_kubernetes(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "kubernetes" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "kubernetes":
            return True
    return False


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_only_the_actuator_calls_kubernetes_write_verbs():
    readers, offenders = [], []
    for path in _sources():
        rel = path.relative_to(ROOT)
        tree = ast.parse(path.read_text(), filename=str(rel))
        if not _imports_kubernetes(tree) or rel.parts[:2] == ("aiops", "actuator"):
            continue
        readers.append(str(rel))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and WRITE_VERB.match(node.func.attr):
                offenders.append(f"{rel}:{node.lineno} calls .{node.func.attr}()")
    assert readers == ["aiops/sources/kube_events.py"], f"modules outside the actuator importing kubernetes: {readers}"
    assert not offenders, "writes to a cluster outside aiops.actuator:\n" + "\n".join(offenders)


def test_the_actuator_does_write_through_the_client():
    # the scan above must be looking at real calls: the actuator's own patches are found by the same rule
    tree = ast.parse((ROOT / "aiops/actuator/kube.py").read_text())
    verbs = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and WRITE_VERB.match(n.func.attr)}
    assert {"patch_namespaced_deployment", "patch_namespaced_horizontal_pod_autoscaler",
            "patch_namespaced_custom_object"} <= verbs


def test_import_contract_is_declared_and_kept():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in cfg["contracts"] if c["name"].startswith("only the actuator writes"))
    assert contract["type"] == "forbidden" and contract["forbidden_modules"] == ["kubernetes"]
    assert set(contract["source_modules"]) == set(PACKAGES)
    linter = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(linter), "--contract", contract["id"], "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "KEPT" in proc.stdout
