"""Write a kubeconfig that points kubectl and the `kubernetes` client at the simulated cluster's API server."""

from __future__ import annotations

import os
from pathlib import Path

import yaml


def kubeconfig_dict(server: str, *, cluster: str = "sim", namespace: str | None = None) -> dict:
    name = f"aiops-{cluster}"
    context: dict = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": name, "user": {}}],  # the simulated API does not authenticate
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
    }


def write_kubeconfig(path: str | Path, server: str, *, cluster: str = "sim", namespace: str | None = None) -> Path:
    """Write (atomically, mode 0600) a kubeconfig whose current context is the simulated cluster; returns the path."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(kubeconfig_dict(server, cluster=cluster, namespace=namespace), sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)
    return path.resolve()
