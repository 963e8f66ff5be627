"""The simulated cluster's Kubernetes API over HTTP: discovery, get/list/watch, patch/update, Tables, Status.

`ApiServer(live).start()` serves a `aiops.sim.live.LiveCluster` on 127.0.0.1; the official `kubernetes` client and
`kubectl` talk to it unchanged (`aiops.sim.kubeconfig.write_kubeconfig` points them at it).
"""

from __future__ import annotations

from aiops.sim.apiserver.server import ApiServer

__all__ = ["ApiServer"]
